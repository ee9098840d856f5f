// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/objectref_p.h"

#include "objects/classinfo_p.h"

#include <QtCore/QSequentialIterable>

#include <QtCore/QHash>

#include <optional>

ObjectRef ObjectRef::make(QObject *o)
{
    ObjectRef ref;
    if (!o)
        return ref;
    ref.object = o;
    ref.address = o;
    ref.thread = o->thread();
    ref.cls = ClassInfo::of(o->metaObject());
    return ref;
}

namespace ObjectValues {
namespace {

// Walks a value once per distinct container: copies of one implicitly
// shared container are looked at once (a list that holds itself twice at
// each of 64 levels must not take 2^64 steps).
class Walker
{
public:
    explicit Walker(bool weaken) : m_weaken(weaken) { }

    // nullopt: nothing to change (the common case costs no copy).
    std::optional<QVariant> walk(const QVariant &v, int depth)
    {
        if (depth > 128) // the bridge refuses deeper values anyway
            return std::nullopt;
        if (m_weaken && isObjectPointer(v))
            return QVariant::fromValue(ObjectRef::make(objectPointer(v)));
        if (!m_weaken && v.metaType() == QMetaType::fromType<ObjectRef>())
            return QVariant::fromValue(static_cast<const ObjectRef *>(v.constData())->object.data());
        switch (v.typeId()) {
        case QMetaType::QVariantList: {
            const auto &list = *static_cast<const QVariantList *>(v.constData());
            if (list.isEmpty())
                return std::nullopt;
            return memo(false, list.isDetached() ? nullptr : list.constData(),
                        [&] { return walkList(list, depth); });
        }
        case QMetaType::QVariantMap: {
            const auto &map = *static_cast<const QVariantMap *>(v.constData());
            if (map.isEmpty()) // (an empty map may have no data: no begin() to look at)
                return std::nullopt;
            return memo(false, map.isDetached() ? nullptr : &map.cbegin().value(),
                        [&] { return walkMap(map, depth); });
        }
        case QMetaType::QVariantHash: {
            const auto &hash = *static_cast<const QVariantHash *>(v.constData());
            if (hash.isEmpty())
                return std::nullopt;
            return memo(false, hash.isDetached() ? nullptr : &hash.cbegin().value(),
                        [&] { return walkMap(hash, depth); });
        }
        default:
            break;
        }
        if (m_weaken && v.typeId() >= QMetaType::User && v.canView<QSequentialIterable>()) {
            // QObjectList, QList<Counter *>, ...: a list of references.
            const QSequentialIterable items = v.value<QSequentialIterable>();
            if (!items.metaContainer().valueMetaType().flags().testFlag(QMetaType::PointerToQObject))
                return std::nullopt;
            QVariantList list;
            for (const QVariant &item : items)
                list.append(QVariant::fromValue(ObjectRef::make(objectPointer(item))));
            return QVariant(list);
        }
        return std::nullopt;
    }

    std::optional<QVariant> walkList(const QVariantList &list, int depth)
    {
        std::optional<QVariantList> copy;
        for (qsizetype i = 0; i < list.size(); ++i) {
            if (std::optional<QVariant> w = walk(list.at(i), depth + 1)) {
                if (!copy)
                    copy = list;
                (*copy)[i] = *w;
            }
        }
        if (!copy)
            return std::nullopt;
        return QVariant(*copy);
    }

    template <typename Map>
    std::optional<QVariant> walkMap(const Map &map, int depth)
    {
        std::optional<Map> copy;
        for (auto it = map.cbegin(); it != map.cend(); ++it) {
            if (std::optional<QVariant> w = walk(it.value(), depth + 1)) {
                if (!copy)
                    copy = map;
                copy->insert(it.key(), *w);
            }
        }
        if (!copy)
            return std::nullopt;
        return QVariant::fromValue(*copy);
    }

private:
    // shared: the container's identity when other values share it (only
    // those can come again), else nullptr.
    template <typename F>
    std::optional<QVariant> memo(bool empty, const void *shared, F &&compute)
    {
        if (empty)
            return std::nullopt;
        if (!shared)
            return compute();
        const void *identity = shared;
        if (auto it = m_done.constFind(identity); it != m_done.cend())
            return *it;
        std::optional<QVariant> result = compute();
        m_done.insert(identity, result);
        return result;
    }

    const bool m_weaken;
    QHash<const void *, std::optional<QVariant>> m_done;
};

} // namespace

QVariant weaken(const QVariant &v)
{
    std::optional<QVariant> w = Walker(true).walk(v, 0);
    return w ? *w : v;
}

QVariantList weaken(const QVariantList &list)
{
    std::optional<QVariant> w = Walker(true).walkList(list, 0);
    return w ? w->toList() : list;
}

QVariant strengthen(const QVariant &v)
{
    std::optional<QVariant> s = Walker(false).walk(v, 0);
    return s ? *s : v;
}

QVariantList strengthen(const QVariantList &list)
{
    std::optional<QVariant> s = Walker(false).walkList(list, 0);
    return s ? s->toList() : list;
}

} // namespace ObjectValues
