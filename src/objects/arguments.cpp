// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/arguments_p.h"

#include "objects/objectlib_p.h"
#include "objects/objectref_p.h"
#include "values/value_p.h"

#include <QIsle/qisleerror.h>

#include <QtCore/QVarLengthArray>

#include <cmath>
#include <cstring>
#include <limits>

namespace Arguments {
namespace {

enum class Target { Bool, Integer, Float, Double, String, Bytes, Char, Enum, List, StringList, Map, Pointer, Variant, Other };

bool isFlagsType(QMetaType type)
{
    const char *name = type.name();
    return name && std::strncmp(name, "QFlags<", 7) == 0;
}

Target classify(QMetaType type)
{
    switch (type.id()) {
    case QMetaType::Bool:
        return Target::Bool;
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::Long:
    case QMetaType::ULong:
    case QMetaType::LongLong:
    case QMetaType::ULongLong:
    case QMetaType::Short:
    case QMetaType::UShort:
    case QMetaType::Char:
    case QMetaType::SChar:
    case QMetaType::UChar:
    case QMetaType::Char16:
    case QMetaType::Char32:
        return Target::Integer;
    case QMetaType::Double:
        return Target::Double;
    case QMetaType::Float:
        return Target::Float;
    case QMetaType::QString:
        return Target::String;
    case QMetaType::QByteArray:
        return Target::Bytes;
    case QMetaType::QChar:
        return Target::Char;
    case QMetaType::QVariantList:
        return Target::List;
    case QMetaType::QStringList:
        return Target::StringList;
    case QMetaType::QVariantMap:
    case QMetaType::QVariantHash:
        return Target::Map;
    case QMetaType::QVariant:
        return Target::Variant;
    default:
        break;
    }
    const QMetaType::TypeFlags flags = type.flags();
    if (flags.testFlag(QMetaType::PointerToQObject))
        return Target::Pointer;
    if (flags.testFlag(QMetaType::IsEnumeration) || isFlagsType(type))
        return Target::Enum;
    return Target::Other;
}

// The range of an integer parameter type.
void integerRange(QMetaType type, lua_Integer *min, lua_Integer *max)
{
    using L = std::numeric_limits<lua_Integer>;
    switch (type.id()) {
    case QMetaType::Int: *min = std::numeric_limits<int>::min(); *max = std::numeric_limits<int>::max(); return;
    case QMetaType::UInt: *min = 0; *max = std::numeric_limits<uint>::max(); return;
    case QMetaType::Long: *min = std::numeric_limits<long>::min(); *max = std::numeric_limits<long>::max(); return;
    case QMetaType::ULong: *min = 0; *max = lua_Integer(std::min<qulonglong>(std::numeric_limits<ulong>::max(), qulonglong(L::max()))); return;
    case QMetaType::LongLong: *min = L::min(); *max = L::max(); return;
    case QMetaType::ULongLong: *min = 0; *max = L::max(); return;
    case QMetaType::Short: *min = std::numeric_limits<short>::min(); *max = std::numeric_limits<short>::max(); return;
    case QMetaType::UShort: *min = 0; *max = std::numeric_limits<ushort>::max(); return;
    case QMetaType::Char: *min = std::numeric_limits<char>::min(); *max = std::numeric_limits<char>::max(); return;
    case QMetaType::SChar: *min = std::numeric_limits<signed char>::min(); *max = std::numeric_limits<signed char>::max(); return;
    case QMetaType::UChar: *min = 0; *max = std::numeric_limits<uchar>::max(); return;
    case QMetaType::Char16: *min = 0; *max = 0xFFFF; return;
    case QMetaType::Char32: *min = 0; *max = std::numeric_limits<char32_t>::max(); return;
    default: *min = L::min(); *max = L::max(); return;
    }
}

// An enum's range from its size and signedness.
void enumRange(QMetaType type, lua_Integer *min, lua_Integer *max)
{
    const bool isUnsigned = type.flags().testFlag(QMetaType::IsUnsignedEnumeration);
    const qsizetype bits = 8 * type.sizeOf();
    if (bits >= 64) {
        *min = isUnsigned ? 0 : std::numeric_limits<lua_Integer>::min();
        *max = std::numeric_limits<lua_Integer>::max();
    } else if (isUnsigned) {
        *min = 0;
        *max = (lua_Integer(1) << bits) - 1;
    } else {
        *min = -(lua_Integer(1) << (bits - 1));
        *max = (lua_Integer(1) << (bits - 1)) - 1;
    }
}

// Writes an integer into a value of an integer or enum type (range checked).
QVariant integerValue(QMetaType type, lua_Integer n)
{
    QVariant v(type);
    void *d = v.data();
    switch (type.id()) {
    case QMetaType::Int: *static_cast<int *>(d) = int(n); return v;
    case QMetaType::UInt: *static_cast<uint *>(d) = uint(n); return v;
    case QMetaType::Long: *static_cast<long *>(d) = long(n); return v;
    case QMetaType::ULong: *static_cast<ulong *>(d) = ulong(n); return v;
    case QMetaType::LongLong: *static_cast<qlonglong *>(d) = qlonglong(n); return v;
    case QMetaType::ULongLong: *static_cast<qulonglong *>(d) = qulonglong(n); return v;
    case QMetaType::Short: *static_cast<short *>(d) = short(n); return v;
    case QMetaType::UShort: *static_cast<ushort *>(d) = ushort(n); return v;
    case QMetaType::Char: *static_cast<char *>(d) = char(n); return v;
    case QMetaType::SChar: *static_cast<signed char *>(d) = static_cast<signed char>(n); return v;
    case QMetaType::UChar: *static_cast<uchar *>(d) = uchar(n); return v;
    case QMetaType::Char16: *static_cast<char16_t *>(d) = char16_t(n); return v;
    case QMetaType::Char32: *static_cast<char32_t *>(d) = char32_t(n); return v;
    default:
        break;
    }
    // An enum or QFlags: its bytes, by size.
    switch (type.sizeOf()) {
    case 1: { const qint8 x = qint8(n); std::memcpy(d, &x, 1); break; }
    case 2: { const qint16 x = qint16(n); std::memcpy(d, &x, 2); break; }
    case 4: { const qint32 x = qint32(n); std::memcpy(d, &x, 4); break; }
    case 8: { const qint64 x = qint64(n); std::memcpy(d, &x, 8); break; }
    default: return {};
    }
    return v;
}

bool inRange(lua_Integer n, lua_Integer min, lua_Integer max)
{
    return n >= min && n <= max;
}

// A float that is a whole number, as an integer.
bool floatToInteger(lua_Number f, lua_Integer *n)
{
    if (!(f == std::floor(f)) || !(f >= -9223372036854775808.0) || !(f < 9223372036854775808.0))
        return false;
    *n = lua_Integer(f);
    return true;
}

QString readString(lua_State *L, int idx, bool *utf8)
{
    size_t length = 0;
    const char *s = lua_tolstring(L, idx, &length);
    *utf8 = Value::isValidUtf8(s, length);
    return *utf8 ? QString::fromUtf8(s, qsizetype(length)) : QString();
}

QByteArray readBytes(lua_State *L, int idx)
{
    size_t length = 0;
    const char *s = lua_tolstring(L, idx, &length);
    return QByteArray(s, qsizetype(length));
}

// Any value through the bridge; objects as references. nullopt: it does
// not convert (a function inside, a cycle...).
std::optional<QVariant> bridged(lua_State *L, int idx)
{
    ObjectRef ref;
    if (ObjectLib::toRef(L, idx, &ref))
        return QVariant::fromValue(ref);
    try {
        return ObjectValues::weaken(Value::read(L, idx, QStringLiteral("value")));
    } catch (const QIsleError &) {
        return std::nullopt;
    }
}

Match generic(lua_State *L, int idx, QMetaType type, QVariant *out)
{
    std::optional<QVariant> v = bridged(L, idx);
    if (!v)
        return Match::None;
    if (v->metaType() == type) {
        *out = *v;
        return Match::Exact;
    }
    if (!QMetaType::canConvert(v->metaType(), type))
        return Match::None;
    QVariant converted = *v;
    if (!converted.convert(type))
        return Match::None;
    *out = converted;
    return Match::Conversion;
}

QString signatures(const MemberInfo &member)
{
    QStringList list;
    for (const MethodInfo &m : member.methods)
        list << QString::fromLatin1(m.signature);
    return list.join(QStringLiteral(", "));
}

QString describeAll(lua_State *L, int first, int count)
{
    QStringList list;
    for (int i = 0; i < count; ++i)
        list << describe(L, first + i);
    return list.join(QStringLiteral(", "));
}

} // namespace

QString describe(lua_State *L, int idx)
{
    ObjectRef ref;
    if (ObjectLib::toRef(L, idx, &ref) && ref.cls)
        return QString::fromLatin1(ref.cls->className());
    if (lua_type(L, idx) == LUA_TNUMBER)
        return lua_isinteger(L, idx) ? QStringLiteral("integer") : QStringLiteral("number");
    return QString::fromLatin1(luaL_typename(L, idx));
}

Match convert(lua_State *L, int idx, QMetaType type, QVariant *out)
{
    const Target target = classify(type);
    const int luaType = lua_type(L, idx);

    if (target == Target::Variant) {
        std::optional<QVariant> v = luaType == LUA_TNIL || luaType == LUA_TNONE ? QVariant() : bridged(L, idx);
        if (!v)
            return Match::None;
        *out = *v;
        return Match::Conversion;
    }

    switch (luaType) {
    case LUA_TNIL:
    case LUA_TNONE:
        if (target == Target::Pointer) {
            *out = QVariant(type); // nullptr
            return Match::Conversion;
        }
        return Match::None;

    case LUA_TBOOLEAN:
        if (target == Target::Bool) {
            *out = QVariant(bool(lua_toboolean(L, idx)));
            return Match::Exact;
        }
        return target == Target::Other ? generic(L, idx, type, out) : Match::None;

    case LUA_TNUMBER: {
        lua_Integer min = 0, max = 0;
        if (lua_isinteger(L, idx)) {
            const lua_Integer n = lua_tointeger(L, idx);
            switch (target) {
            case Target::Integer:
                integerRange(type, &min, &max);
                if (!inRange(n, min, max))
                    return Match::None;
                *out = integerValue(type, n);
                return Match::Exact;
            case Target::Enum:
                enumRange(type, &min, &max);
                if (!inRange(n, min, max))
                    return Match::None;
                *out = integerValue(type, n);
                return out->isValid() ? Match::Exact : Match::None;
            case Target::Double: {
                const double d = double(n);
                if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || lua_Integer(d) != n)
                    return Match::None; // not exactly a double
                *out = QVariant(d);
                return Match::Conversion;
            }
            case Target::Float:
                *out = QVariant(float(n));
                return Match::Conversion;
            case Target::Other:
                return generic(L, idx, type, out);
            default:
                return Match::None;
            }
        }
        const lua_Number f = lua_tonumber(L, idx);
        switch (target) {
        case Target::Double:
            *out = QVariant(double(f));
            return Match::Exact;
        case Target::Float:
            *out = QVariant(float(f));
            return Match::Conversion;
        case Target::Integer:
        case Target::Enum: {
            lua_Integer n = 0;
            if (!floatToInteger(f, &n))
                return Match::None;
            if (target == Target::Integer)
                integerRange(type, &min, &max);
            else
                enumRange(type, &min, &max);
            if (!inRange(n, min, max))
                return Match::None;
            *out = integerValue(type, n);
            return out->isValid() ? Match::Conversion : Match::None;
        }
        case Target::Other:
            return generic(L, idx, type, out);
        default:
            return Match::None;
        }
    }

    case LUA_TSTRING: {
        bool utf8 = false;
        switch (target) {
        case Target::String: {
            QString s = readString(L, idx, &utf8);
            if (!utf8)
                return Match::None;
            *out = QVariant(s);
            return Match::Exact;
        }
        case Target::Bytes:
            *out = QVariant(readBytes(L, idx));
            return Match::Conversion;
        case Target::Char: {
            const QString s = readString(L, idx, &utf8);
            if (!utf8 || s.size() != 1)
                return Match::None;
            *out = QVariant(s.at(0));
            return Match::Conversion;
        }
        case Target::Enum: {
            const EnumInfo *e = enumInfoForType(type);
            if (!e)
                return Match::None;
            const std::optional<qint64> value = e->valueOf(readBytes(L, idx));
            if (!value)
                return Match::None;
            *out = integerValue(type, lua_Integer(*value));
            return out->isValid() ? Match::Conversion : Match::None;
        }
        case Target::Other:
            return generic(L, idx, type, out);
        default:
            return Match::None;
        }
    }

    case LUA_TTABLE: {
        if (target != Target::List && target != Target::StringList && target != Target::Map
            && target != Target::Other)
            return Match::None;
        std::optional<QVariant> v = bridged(L, idx);
        if (!v)
            return Match::None;
        const bool isList = v->typeId() == QMetaType::QVariantList;
        const bool isEmpty = isList && v->toList().isEmpty();
        switch (target) {
        case Target::List:
            if (!isList)
                return Match::None;
            *out = *v;
            return Match::Exact;
        case Target::StringList: {
            if (!isList)
                return Match::None;
            QStringList strings;
            for (const QVariant &item : v->toList()) {
                if (item.typeId() != QMetaType::QString)
                    return Match::None;
                strings << item.toString();
            }
            *out = QVariant(strings);
            return Match::Exact;
        }
        case Target::Map:
            if (!isEmpty && v->typeId() != QMetaType::QVariantMap)
                return Match::None;
            if (type.id() == QMetaType::QVariantHash) {
                QVariantHash hash;
                const QVariantMap map = v->toMap();
                for (auto it = map.cbegin(); it != map.cend(); ++it)
                    hash.insert(it.key(), it.value());
                *out = QVariant(hash);
            } else {
                *out = QVariant(v->toMap());
            }
            return Match::Exact;
        default:
            return generic(L, idx, type, out);
        }
    }

    case LUA_TUSERDATA: {
        ObjectRef ref;
        if (!ObjectLib::toRef(L, idx, &ref))
            return Match::None;
        if (ref.address && !ref.object)
            throw QIsleError(QIsleError::Kind::Runtime,
                             QStringLiteral("a %1 that was destroyed cannot be passed")
                                     .arg(QString::fromLatin1(ref.cls ? ref.cls->className() : "QObject")));
        if (target != Target::Pointer)
            return Match::None;
        const QMetaObject *wanted = type.metaObject();
        if (wanted && (!ref.cls || !ref.cls->inherits(wanted->className())))
            return Match::None;
        *out = QVariant::fromValue(ref);
        return Match::Exact;
    }

    default:
        return Match::None;
    }
}

Chosen choose(lua_State *L, int first, int count, const MemberInfo &member, const QByteArray &className)
{
    // The usual case: one overload.
    if (member.methods.size() == 1) {
        const MethodInfo &m = member.methods.front();
        if (m.params.size() == count) {
            Chosen chosen;
            chosen.method = &m;
            chosen.args.reserve(count);
            bool ok = true;
            for (int i = 0; i < count && ok; ++i) {
                QVariant v;
                ok = convert(L, first + i, m.params.at(i), &v) != Match::None;
                chosen.args.append(v);
            }
            if (ok)
                return chosen;
        }
    }

    struct Candidate
    {
        const MethodInfo *method;
        std::vector<Match> matches;
        QVariantList args;
    };
    std::vector<Candidate> viable;
    bool countFits = false;
    for (const MethodInfo &m : member.methods) {
        if (m.params.size() != count)
            continue;
        countFits = true;
        Candidate c{&m, {}, {}};
        bool ok = true;
        for (int i = 0; i < count && ok; ++i) {
            QVariant v;
            const Match match = convert(L, first + i, m.params.at(i), &v);
            ok = match != Match::None;
            c.matches.push_back(match);
            c.args.append(v);
        }
        if (ok)
            viable.push_back(std::move(c));
    }

    const QString name = QStringLiteral("%1.%2").arg(QString::fromLatin1(className), QString::fromLatin1(member.name));
    if (!countFits)
        throw QIsleError(QIsleError::Kind::Runtime,
                         QStringLiteral("%1: no overload takes %2 argument%3; candidates: %4")
                                 .arg(name).arg(count).arg(count == 1 ? QString() : QStringLiteral("s"),
                                                           signatures(member)));
    if (viable.empty())
        throw QIsleError(QIsleError::Kind::Runtime,
                         QStringLiteral("%1: no overload matches (%2); candidates: %3")
                                 .arg(name, describeAll(L, first, count), signatures(member)));

    // The one at least as good as every other on each argument and better
    // on one.
    const auto dominates = [count](const Candidate &a, const Candidate &b) {
        bool better = false;
        for (int i = 0; i < count; ++i) {
            if (a.matches[i] < b.matches[i])
                return false;
            better = better || a.matches[i] > b.matches[i];
        }
        return better;
    };
    for (const Candidate &a : viable) {
        bool best = true;
        for (const Candidate &b : viable) {
            if (&a != &b && !dominates(a, b)) {
                best = false;
                break;
            }
        }
        if (best)
            return Chosen{a.method, a.args};
    }
    QStringList tied;
    for (const Candidate &c : viable)
        tied << QString::fromLatin1(c.method->signature);
    throw QIsleError(QIsleError::Kind::Runtime,
                     QStringLiteral("%1: ambiguous call with (%2); candidates: %3")
                             .arg(name, describeAll(L, first, count), tied.join(QStringLiteral(", "))));
}

QVariant materialize(const QVariant &value, QMetaType type, const QString &where)
{
    if (value.metaType() == QMetaType::fromType<ObjectRef>()) {
        const auto *ref = static_cast<const ObjectRef *>(value.constData());
        QObject *object = ref->object.data();
        if (!object && ref->address)
            throw QIsleError(QIsleError::Kind::Runtime, QStringLiteral("%1: the object was destroyed").arg(where));
        if (!type.flags().testFlag(QMetaType::PointerToQObject))
            return QVariant::fromValue(object);
        QVariant v(type);
        *static_cast<QObject **>(v.data()) = object;
        return v;
    }
    switch (value.typeId()) {
    case QMetaType::QVariantList:
    case QMetaType::QVariantMap:
    case QMetaType::QVariantHash:
        return ObjectValues::strengthen(value);
    default:
        return value;
    }
}

QVariant invoke(QObject *object, const MethodInfo &method, const QVariantList &args, const QString &where)
{
    const qsizetype n = method.params.size();
    QVarLengthArray<QVariant, 8> storage(n);
    QVarLengthArray<void *, 9> argv(n + 1);
    for (qsizetype i = 0; i < n; ++i) {
        const QMetaType type = method.params.at(i);
        if (type == QMetaType::fromType<QVariant>()) {
            storage[i] = ObjectValues::strengthen(args.at(i));
            argv[i + 1] = &storage[i];
        } else {
            storage[i] = materialize(args.at(i), type, where);
            if (storage[i].metaType() != type && !storage[i].convert(type))
                throw QIsleError(QIsleError::Kind::Runtime,
                                 QStringLiteral("%1: argument %2 is not a %3").arg(where).arg(i + 1)
                                         .arg(QString::fromLatin1(type.name())));
            argv[i + 1] = storage[i].data();
        }
    }
    QVariant result;
    argv[0] = nullptr;
    const QMetaType returnType = method.returnType;
    if (returnType.isValid() && returnType.id() != QMetaType::Void) {
        if (returnType == QMetaType::fromType<QVariant>()) {
            argv[0] = &result;
        } else {
            result = QVariant(returnType);
            argv[0] = result.data();
        }
    }
    QMetaObject::metacall(object, QMetaObject::InvokeMetaMethod, method.index, argv.data());
    return result;
}

QVariant forLua(const QVariant &value)
{
    const QMetaType type = value.metaType();
    if (!type.flags().testFlag(QMetaType::IsEnumeration) && !isFlagsType(type))
        return value;
    const bool isUnsigned = type.flags().testFlag(QMetaType::IsUnsignedEnumeration);
    const void *d = value.constData();
    switch (type.sizeOf()) {
    case 1: return isUnsigned ? QVariant(qlonglong(*static_cast<const quint8 *>(d))) : QVariant(qlonglong(*static_cast<const qint8 *>(d)));
    case 2: return isUnsigned ? QVariant(qlonglong(*static_cast<const quint16 *>(d))) : QVariant(qlonglong(*static_cast<const qint16 *>(d)));
    case 4: return isUnsigned ? QVariant(qlonglong(*static_cast<const quint32 *>(d))) : QVariant(qlonglong(*static_cast<const qint32 *>(d)));
    case 8: return QVariant(qlonglong(*static_cast<const qint64 *>(d)));
    default: return value;
    }
}

} // namespace Arguments
