// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "value_p.h"

#include "stackguard_p.h"

#include <QtCore/QAssociativeIterable>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QSequentialIterable>
#include <QtCore/QVarLengthArray>

#include <limits>
#include <vector>

namespace {

// Where in a nested value we are, built into text only when an error needs it.
class Path
{
public:
    explicit Path(const QString &root) : m_root(root) { }

    void pushIndex(lua_Integer index) { m_segments.push_back({index, {}}); }
    void pushName(const QString &name) { m_segments.push_back({0, name}); }
    void pop() { m_segments.pop_back(); }

    [[noreturn]] void fail(const QString &what) const
    {
        throw QIsleError(QIsleError::Kind::Conversion, toString() + QLatin1String(": ") + what);
    }

    QString toString() const
    {
        QString text = m_root;
        for (const Segment &s : m_segments) {
            if (s.name.isNull())
                text += QLatin1Char('[') + QString::number(s.index) + QLatin1Char(']');
            else if (isIdentifier(s.name))
                text += QLatin1Char('.') + s.name;
            else
                text += QLatin1String("[\"") + s.name + QLatin1String("\"]");
        }
        return text;
    }

private:
    static bool isIdentifier(const QString &name)
    {
        if (name.isEmpty() || name.front().isDigit())
            return false;
        for (QChar c : name) {
            if (!(c.isLetterOrNumber() && c.unicode() < 128) && c != QLatin1Char('_'))
                return false;
        }
        return true;
    }

    struct Segment
    {
        lua_Integer index;
        QString name; // null: an index
    };
    QString m_root;
    std::vector<Segment> m_segments;
};

QString luaString(lua_State *L, int index)
{
    size_t length = 0;
    const char *data = lua_tolstring(L, index, &length);
    return QString::fromUtf8(data, qsizetype(length));
}

class Reader
{
public:
    Reader(lua_State *L, const QString &where) : m_L(L), m_path(where) { }

    QVariant read(int index, int depth)
    {
        lua_State *L = m_L;
        switch (lua_type(L, index)) {
        case LUA_TNIL:
        case LUA_TNONE:
            return {};
        case LUA_TBOOLEAN:
            return bool(lua_toboolean(L, index));
        case LUA_TNUMBER:
            if (lua_isinteger(L, index))
                return qlonglong(lua_tointeger(L, index));
            return double(lua_tonumber(L, index));
        case LUA_TSTRING: {
            size_t length = 0;
            const char *data = lua_tolstring(L, index, &length);
            if (Value::isValidUtf8(data, length))
                return QString::fromUtf8(data, qsizetype(length));
            return QByteArray(data, qsizetype(length));
        }
        case LUA_TTABLE:
            return readTable(lua_absindex(L, index), depth + 1);
        default:
            // __name is not consulted: the error names Lua's own type.
            m_path.fail(QStringLiteral("cannot convert a %1").arg(QLatin1String(luaL_typename(L, index))));
        }
    }

private:
    QVariant readTable(int index, int depth)
    {
        lua_State *L = m_L;
        if (depth > QIsleValue::MaxDepth)
            m_path.fail(QStringLiteral("tables nested deeper than %1").arg(QIsleValue::MaxDepth));
        const void *identity = lua_topointer(L, index);
        if (m_visiting.contains(identity))
            m_path.fail(QStringLiteral("a cycle: the table contains itself"));
        luaL_checkstack(L, 4, "QIsle value conversion");
        m_visiting.push_back(identity);

        QVariant result;
        const lua_Unsigned length = lua_rawlen(L, index);
        if (isSequence(index, length)) {
            QVariantList list;
            list.reserve(qsizetype(length));
            for (lua_Unsigned i = 1; i <= length; ++i) {
                lua_rawgeti(L, index, lua_Integer(i));
                m_path.pushIndex(lua_Integer(i));
                list.append(read(-1, depth));
                m_path.pop();
                lua_pop(L, 1);
            }
            result = std::move(list);
        } else {
            QVariantMap map;
            lua_pushnil(L);
            while (lua_next(L, index)) {
                const QString key = readKey();
                m_path.pushName(key);
                map.insert(key, read(-1, depth));
                m_path.pop();
                lua_pop(L, 1);
            }
            result = std::move(map);
        }
        m_visiting.pop_back();
        return result;
    }

    // Keys exactly 1..length. An empty table counts as a sequence: it
    // becomes an empty QVariantList.
    bool isSequence(int index, lua_Unsigned length)
    {
        lua_State *L = m_L;
        lua_Unsigned count = 0;
        lua_pushnil(L);
        while (lua_next(L, index)) {
            lua_pop(L, 1);
            lua_Integer key = 0;
            if (!lua_isinteger(L, -1) || (key = lua_tointeger(L, -1)) < 1 || lua_Unsigned(key) > length) {
                lua_pop(L, 1);
                return false;
            }
            ++count;
        }
        return count == length;
    }

    // The key at -2 as a map key: strings as they are, integers in decimal.
    QString readKey()
    {
        lua_State *L = m_L;
        switch (lua_type(L, -2)) {
        case LUA_TSTRING: {
            size_t length = 0;
            const char *data = lua_tolstring(L, -2, &length); // a string: no conversion in place
            if (!Value::isValidUtf8(data, length))
                m_path.fail(QStringLiteral("a table key is not valid UTF-8"));
            return QString::fromUtf8(data, qsizetype(length));
        }
        case LUA_TNUMBER:
            if (lua_isinteger(L, -2))
                return QString::number(lua_tointeger(L, -2));
            m_path.fail(QStringLiteral("a table key is a non-integer number (%1)").arg(lua_tonumber(L, -2)));
        default:
            m_path.fail(QStringLiteral("a table key is a %1").arg(QLatin1String(luaL_typename(L, -2))));
        }
    }

    lua_State *m_L;
    Path m_path;
    QVarLengthArray<const void *, 16> m_visiting; // tables on the current path
};

class Writer
{
public:
    Writer(lua_State *L, const QString &where) : m_L(L), m_path(where) { }

    void push(const QVariant &v, int depth)
    {
        lua_State *L = m_L;
        switch (v.typeId()) {
        case QMetaType::UnknownType:
        case QMetaType::Nullptr:
            lua_pushnil(L);
            return;
        case QMetaType::Bool:
            lua_pushboolean(L, v.toBool());
            return;
        case QMetaType::Int:
        case QMetaType::Short:
        case QMetaType::Long:
        case QMetaType::LongLong:
        case QMetaType::Char:
        case QMetaType::SChar:
            lua_pushinteger(L, lua_Integer(v.toLongLong()));
            return;
        case QMetaType::UInt:
        case QMetaType::UShort:
        case QMetaType::ULong:
        case QMetaType::ULongLong:
        case QMetaType::UChar: {
            const qulonglong value = v.toULongLong();
            if (value > qulonglong(std::numeric_limits<lua_Integer>::max()))
                m_path.fail(QStringLiteral("the unsigned integer %1 does not fit a Lua integer").arg(value));
            lua_pushinteger(L, lua_Integer(value));
            return;
        }
        case QMetaType::Double:
            lua_pushnumber(L, v.toDouble());
            return;
        case QMetaType::Float:
            lua_pushnumber(L, lua_Number(v.toFloat()));
            return;
        case QMetaType::QString:
            pushUtf8(v.toString());
            return;
        case QMetaType::QChar:
            pushUtf8(QString(v.toChar()));
            return;
        case QMetaType::QByteArray: {
            const QByteArray bytes = v.toByteArray();
            lua_pushlstring(L, bytes.constData(), size_t(bytes.size()));
            return;
        }
        case QMetaType::QStringList:
            pushList(v.toStringList(), depth);
            return;
        case QMetaType::QVariantList:
            pushList(v.toList(), depth);
            return;
        case QMetaType::QVariantMap:
            pushMap(v.toMap(), depth);
            return;
        case QMetaType::QVariantHash:
            pushMap(v.toHash(), depth);
            return;
        case QMetaType::QJsonValue:
            push(v.toJsonValue().toVariant(), depth);
            return;
        case QMetaType::QJsonObject:
            pushMap(v.toJsonObject().toVariantMap(), depth);
            return;
        case QMetaType::QJsonArray:
            pushList(v.toJsonArray().toVariantList(), depth);
            return;
        case QMetaType::QJsonDocument: {
            const QJsonDocument document = v.toJsonDocument();
            if (document.isArray())
                pushList(document.array().toVariantList(), depth);
            else if (document.isObject())
                pushMap(document.object().toVariantMap(), depth);
            else
                lua_pushnil(L);
            return;
        }
        default:
            break;
        }
        // Other containers Qt can iterate (QList<int>, QMap<QString, T>, ...).
        if (v.canConvert<QVariantList>() && v.canView<QSequentialIterable>()) {
            pushList(v.value<QSequentialIterable>(), depth);
            return;
        }
        if (v.canConvert<QVariantMap>() && v.canView<QAssociativeIterable>()) {
            pushMap(v.toMap(), depth);
            return;
        }
        m_path.fail(QStringLiteral("cannot convert a QVariant of type %1")
                            .arg(QLatin1String(v.metaType().name() ? v.metaType().name() : "unknown")));
    }

private:
    void pushUtf8(const QString &text)
    {
        const QByteArray utf8 = text.toUtf8();
        lua_pushlstring(m_L, utf8.constData(), size_t(utf8.size()));
    }

    void enter(int depth)
    {
        if (depth >= QIsleValue::MaxDepth)
            m_path.fail(QStringLiteral("values nested deeper than %1").arg(QIsleValue::MaxDepth));
        luaL_checkstack(m_L, 4, "QIsle value conversion");
    }

    template<typename List>
    void pushList(const List &list, int depth)
    {
        enter(depth);
        lua_createtable(m_L, int(qMin<qsizetype>(list.size(), std::numeric_limits<int>::max())), 0);
        lua_Integer i = 0;
        for (const auto &item : list) {
            ++i;
            m_path.pushIndex(i);
            push(QVariant(item), depth + 1);
            m_path.pop();
            lua_rawseti(m_L, -2, i);
        }
    }

    template<typename Map>
    void pushMap(const Map &map, int depth)
    {
        enter(depth);
        lua_createtable(m_L, 0, int(qMin<qsizetype>(map.size(), std::numeric_limits<int>::max())));
        for (auto it = map.cbegin(); it != map.cend(); ++it) {
            pushUtf8(it.key());
            m_path.pushName(it.key());
            push(it.value(), depth + 1);
            m_path.pop();
            lua_rawset(m_L, -3);
        }
    }

    lua_State *m_L;
    Path m_path;
};

int describe(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
        || luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
        lua_settop(L, 1);
        luaL_tolstring(L, 1, nullptr);
    } else {
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    return 1;
}

} // namespace

namespace Value {

QVariant read(lua_State *L, int index, const QString &where)
{
    const int top = lua_gettop(L);
    try {
        StackGuard guard(L);
        return Reader(L, where).read(lua_absindex(L, index), 0);
    } catch (const QIsleError &) {
        lua_settop(L, top);
        throw;
    }
}

void push(lua_State *L, const QVariant &value, const QString &where)
{
    const int top = lua_gettop(L);
    try {
        StackGuard guard(L, 1);
        Writer(L, where).push(value, 0);
    } catch (const QIsleError &) {
        lua_settop(L, top);
        throw;
    }
}

QString describeErrorObject(lua_State *L, int index)
{
    index = lua_absindex(L, index);
    if (!lua_checkstack(L, 3))
        return QStringLiteral("(error object could not be read)");
    lua_pushcfunction(L, describe);
    lua_pushvalue(L, index);
    QString text;
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
        text = luaString(L, -1);
    else
        text = QStringLiteral("(error object is a %1 value)").arg(QLatin1String(luaL_typename(L, index)));
    lua_pop(L, 1);
    return text;
}

bool isValidUtf8(const char *data, size_t length)
{
    const auto *s = reinterpret_cast<const unsigned char *>(data);
    const unsigned char *end = s + length;
    while (s < end) {
        const unsigned char c = *s;
        if (c < 0x80) {
            ++s;
            continue;
        }
        int extra;
        unsigned min;
        unsigned code;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, min = 0x80, code = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, min = 0x800, code = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, min = 0x10000, code = c & 0x07;
        } else {
            return false;
        }
        if (end - s <= extra)
            return false;
        for (int i = 1; i <= extra; ++i) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (s[i] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        s += extra + 1;
    }
    return true;
}

} // namespace Value

void QIsleValue::push(lua_State *L, const QVariant &v, const QString &where)
{
    Value::push(L, v, where);
}

QVariant QIsleValue::read(lua_State *L, int index, const QString &where)
{
    return Value::read(L, index, where);
}
