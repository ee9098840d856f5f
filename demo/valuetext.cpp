// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "valuetext.h"

#include <QtCore/QStringList>

namespace {

QString text(const QVariant &value, bool nested)
{
    switch (value.typeId()) {
    case QMetaType::UnknownType:
        return QStringLiteral("nil");
    case QMetaType::Bool:
        return value.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    case QMetaType::LongLong:
    case QMetaType::Int:
        return QString::number(value.toLongLong());
    case QMetaType::Double:
        return QString::number(value.toDouble(), 'g', 14);
    case QMetaType::QString:
        return nested ? QLatin1Char('"') + value.toString() + QLatin1Char('"') : value.toString();
    case QMetaType::QByteArray:
        return QStringLiteral("<%1 bytes>").arg(value.toByteArray().size());
    case QMetaType::QVariantList: {
        QStringList items;
        for (const QVariant &item : value.toList())
            items << text(item, true);
        return QLatin1Char('{') + items.join(QLatin1String(", ")) + QLatin1Char('}');
    }
    case QMetaType::QVariantMap: {
        QStringList items;
        const QVariantMap map = value.toMap();
        for (auto it = map.cbegin(); it != map.cend(); ++it)
            items << it.key() + QLatin1String(" = ") + text(it.value(), true);
        return QLatin1Char('{') + items.join(QLatin1String(", ")) + QLatin1Char('}');
    }
    default:
        return value.toString();
    }
}

} // namespace

QString valueText(const QVariant &value)
{
    return text(value, false);
}
