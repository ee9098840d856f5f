// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "jsvalue_p.h"

#include <QtQml/QJSValue>

#include <cmath>

QVariant JsValue::toLua(const QVariant &value)
{
    if (value.metaType() == QMetaType::fromType<QJSValue>())
        return toLua(value.value<QJSValue>().toVariant());
    switch (value.typeId()) {
    case QMetaType::Nullptr:
        return {};
    case QMetaType::Double: {
        // Beyond 2^53 a double no longer holds every integer: keep it a float.
        constexpr double exact = 9007199254740992.0;
        const double d = value.toDouble();
        if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= exact)
            return qlonglong(d);
        return value;
    }
    case QMetaType::QVariantList: {
        QVariantList list = value.toList();
        for (QVariant &item : list)
            item = toLua(item);
        return list;
    }
    case QMetaType::QVariantMap: {
        QVariantMap map = value.toMap();
        for (QVariant &item : map)
            item = toLua(item);
        return map;
    }
    default:
        return value;
    }
}
