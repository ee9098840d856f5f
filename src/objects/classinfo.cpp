// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/classinfo_p.h"

#include <QtCore/QMetaEnum>
#include <QtCore/QMutex>

#include <algorithm>
#include <tuple>

namespace {

// A meta-object is known by what describes it: QML gives each object a copy
// of its type's QMetaObject, with the same data.
struct Key
{
    const void *data;
    const void *strings;
    int methodOffset;
    int propertyOffset;
    bool operator==(const Key &o) const
    {
        return std::tie(data, strings, methodOffset, propertyOffset)
                == std::tie(o.data, o.strings, o.methodOffset, o.propertyOffset);
    }
};

size_t qHash(const Key &k, size_t seed = 0)
{
    return qHashMulti(seed, k.data, k.strings, k.methodOffset, k.propertyOffset);
}

struct Cache
{
    QMutex mutex;
    QHash<const QMetaObject *, std::pair<Key, const ClassInfo *>> byAddress; // fast path
    QHash<Key, const ClassInfo *> byKey;
};

Cache &cache()
{
    static auto *c = new Cache; // process lifetime: handles may outlive statics
    return *c;
}

Key keyOf(const QMetaObject *mo)
{
    return Key{mo->d.data, mo->d.stringdata, mo->methodOffset(), mo->propertyOffset()};
}

std::unique_ptr<EnumInfo> makeEnum(const QMetaEnum &e)
{
    auto info = std::make_unique<EnumInfo>();
    info->name = e.enumName();
    info->scope = e.scope();
    info->isFlag = e.isFlag();
    for (int k = 0; k < e.keyCount(); ++k)
        info->keys.append({QByteArray(e.key(k)), qint64(e.value(k))});
    return info;
}

} // namespace

std::optional<qint64> EnumInfo::valueOf(const QByteArray &text) const
{
    const QList<QByteArray> parts = isFlag ? text.split('|') : QList<QByteArray>{text};
    qint64 value = 0;
    for (QByteArray part : parts) {
        part = part.trimmed();
        // "Counter::Red" and "Color::Red" name the key too.
        if (const qsizetype colons = part.lastIndexOf("::"); colons >= 0)
            part = part.mid(colons + 2);
        bool found = false;
        for (const auto &key : keys) {
            if (key.first == part) {
                value |= key.second;
                found = true;
                break;
            }
        }
        if (!found)
            return std::nullopt;
    }
    return value;
}

const EnumInfo *enumInfoForType(QMetaType type)
{
    static QMutex mutex;
    static auto *known = new QHash<int, const EnumInfo *>; // process lifetime
    QMutexLocker lock(&mutex);
    if (auto it = known->constFind(type.id()); it != known->cend())
        return *it;
    const EnumInfo *result = nullptr;
    // "Counter::Color" or "QFlags<Counter::Color>"
    QByteArray name = type.name();
    if (name.startsWith("QFlags<") && name.endsWith('>'))
        name = name.mid(7, name.size() - 8);
    const QMetaObject *scope = type.metaObject();
    if (scope) {
        const qsizetype colons = name.lastIndexOf("::");
        const QByteArray shortName = colons >= 0 ? name.mid(colons + 2) : name;
        for (int i = scope->enumeratorCount() - 1; i >= 0; --i) {
            const QMetaEnum e = scope->enumerator(i);
            if (shortName == e.enumName() || shortName == e.name()) {
                result = makeEnum(e).release();
                break;
            }
        }
    }
    known->insert(type.id(), result);
    return result;
}

const ClassInfo *ClassInfo::of(const QMetaObject *mo)
{
    Cache &c = cache();
    const Key key = keyOf(mo);
    QMutexLocker lock(&c.mutex);
    if (auto it = c.byAddress.constFind(mo); it != c.byAddress.cend() && it->first == key)
        return it->second;
    const ClassInfo *&info = c.byKey[key];
    if (!info) {
        auto *built = new ClassInfo; // process lifetime, like the cache
        built->build(mo);
        info = built;
    }
    c.byAddress.insert(mo, {key, info});
    return info;
}

const MemberInfo *ClassInfo::member(const QByteArray &name) const
{
    auto it = m_members.constFind(name);
    return it == m_members.cend() ? nullptr : &*it;
}

const EnumInfo *ClassInfo::enumFor(QMetaType type) const
{
    return enumInfoForType(type);
}

void ClassInfo::build(const QMetaObject *mo)
{
    m_className = mo->className();
    // QML names its types' meta-objects "Button_QMLTYPE_6", "Main_QML_12".
    for (const char *suffix : {"_QMLTYPE_", "_QML_"}) {
        if (const qsizetype at = m_className.indexOf(suffix); at > 0)
            m_className.truncate(at);
    }
    for (const QMetaObject *m = mo; m; m = m->superClass())
        m_chain.append(QByteArray(m->className()));

    // Properties first: they win over methods of the same name.
    for (int i = 0; i < mo->propertyCount(); ++i) {
        const QMetaProperty p = mo->property(i);
        MemberInfo info;
        info.kind = MemberInfo::Kind::Property;
        info.name = p.name();
        info.propertyIndex = i;
        info.type = p.metaType();
        info.writable = p.isWritable();
        switch (info.type.id()) {
        case QMetaType::Int: info.fast = MemberInfo::Fast::Int; break;
        case QMetaType::UInt: info.fast = MemberInfo::Fast::UInt; break;
        case QMetaType::LongLong: info.fast = MemberInfo::Fast::LongLong; break;
        case QMetaType::Bool: info.fast = MemberInfo::Fast::Bool; break;
        case QMetaType::Double: info.fast = MemberInfo::Fast::Double; break;
        case QMetaType::Float: info.fast = MemberInfo::Fast::Float; break;
        default: break;
        }
        if (p.isEnumType() || p.isFlagType()) {
            m_enums.push_back(makeEnum(p.enumerator()));
            info.enumType = m_enums.back().get();
        }
        m_members.insert(info.name, info);
    }

    // Public slots and Q_INVOKABLEs, and signals, in declaration order.
    // deleteLater is left out: Lua never deletes a QObject.
    for (int i = 0; i < mo->methodCount(); ++i) {
        const QMetaMethod m = mo->method(i);
        const bool isSignal = m.methodType() == QMetaMethod::Signal;
        const bool callable = m.access() == QMetaMethod::Public
                && (m.methodType() == QMetaMethod::Slot || m.methodType() == QMetaMethod::Method);
        if (!isSignal && !callable)
            continue;
        const QByteArray name = m.name();
        if (name == "deleteLater")
            continue;
        MethodInfo method;
        method.index = i;
        method.signature = m.methodSignature();
        method.returnType = m.returnMetaType();
        method.cloned = m.attributes() & QMetaMethod::Cloned;
        for (int a = 0; a < m.parameterCount(); ++a)
            method.params.append(m.parameterMetaType(a));
        const auto plain = [](QMetaType t) {
            switch (t.id()) {
            case QMetaType::Int:
            case QMetaType::UInt:
            case QMetaType::LongLong:
            case QMetaType::Double:
            case QMetaType::Bool:
                return true;
            default:
                return false;
            }
        };
        method.fast = method.params.size() <= 6
                && std::all_of(method.params.cbegin(), method.params.cend(), plain)
                && (!method.returnType.isValid() || method.returnType.id() == QMetaType::Void
                    || plain(method.returnType));

        auto it = m_members.find(name);
        if (it == m_members.end()) {
            MemberInfo info;
            info.kind = isSignal ? MemberInfo::Kind::Signal : MemberInfo::Kind::Methods;
            info.name = name;
            it = m_members.insert(name, info);
        } else if (it->kind == MemberInfo::Kind::Property
                   || (it->kind == MemberInfo::Kind::Signal) != isSignal) {
            continue; // a property, or a slot named like a signal: first kind wins
        }
        it->methods.push_back(method);
    }
    // For signals, connect/wait/emit use the first full (not cloned) one.
    for (MemberInfo &info : m_members) {
        if (info.kind != MemberInfo::Kind::Signal)
            continue;
        std::stable_partition(info.methods.begin(), info.methods.end(),
                              [](const MethodInfo &m) { return !m.cloned; });
    }

    for (MemberInfo &info : m_members)
        info.path = QStringLiteral("%1.%2").arg(QString::fromLatin1(m_className), QString::fromLatin1(info.name));

    // Enums: the type name gives a table of its keys; each key its value.
    for (int i = 0; i < mo->enumeratorCount(); ++i) {
        m_enums.push_back(makeEnum(mo->enumerator(i)));
        const EnumInfo *e = m_enums.back().get();
        if (!m_members.contains(e->name)) {
            MemberInfo info;
            info.kind = MemberInfo::Kind::Enum;
            info.name = e->name;
            info.enumInfo = e;
            info.path = QStringLiteral("%1.%2").arg(QString::fromLatin1(m_className), QString::fromLatin1(info.name));
            m_members.insert(info.name, info);
        }
        for (const auto &key : e->keys) {
            if (m_members.contains(key.first))
                continue;
            MemberInfo info;
            info.kind = MemberInfo::Kind::EnumKey;
            info.name = key.first;
            info.enumInfo = e;
            info.value = key.second;
            info.path = QStringLiteral("%1.%2").arg(QString::fromLatin1(m_className), QString::fromLatin1(info.name));
            m_members.insert(info.name, info);
        }
    }
}
