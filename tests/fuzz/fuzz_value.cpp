// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// libFuzzer target for the value bridge (README, "Values").
//
// The input is a little program. Its first byte picks a mode:
// - Lua mode builds a random Lua value with the C API (every Lua type,
//   tricky strings and numbers, sequences, maps, holes, odd keys, shared
//   tables, cycles, deep chains), reads it with QIsleValue::read, and checks
//   the result against an independent model of the mapping. Then it pushes the
//   QVariant back and checks that Lua got the same shape and that reading it
//   again gives the same QVariant.
// - QVariant mode builds a random QVariant (every supported type, some
//   unsupported ones, lone surrogates, unsigned overflow, deep nesting, JSON),
//   pushes it and compares what reads back with a model of what should.
// Every failure must be a QIsleError of kind Conversion exactly when the model
// says so, with the stack as it was. Anything else aborts.
#include <QIsle/QIsle>

#include <QtCore/QCoreApplication>
#include <QtCore/QDateTime>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QStringDecoder>
#include <QtCore/QUrl>

#include <QIsle/QIsleLua>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <utility>

namespace {

constexpr int MaxDepth = QIsleValue::MaxDepth;

[[noreturn]] void die(const char *what, const QString &detail = {})
{
    std::fprintf(stderr, "fuzz_value: %s %s\n", what, qPrintable(detail));
    std::fflush(stderr);
    std::abort();
}

#define CHECK(condition, ...)                                                                            \
    do {                                                                                                 \
        if (!(condition))                                                                                \
            die("check failed: " #condition, ##__VA_ARGS__);                                             \
    } while (false)

class Input
{
public:
    Input(const uint8_t *data, size_t size) : m_p(data), m_end(data + size) { }
    bool empty() const { return m_p == m_end; }
    uint8_t byte() { return m_p == m_end ? 0 : *m_p++; }
    uint64_t u64()
    {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v = (v << 8) | byte();
        return v;
    }
    QByteArray bytes(size_t n)
    {
        n = qMin<size_t>(n, size_t(m_end - m_p));
        QByteArray b(reinterpret_cast<const char *>(m_p), qsizetype(n));
        m_p += n;
        return b;
    }

private:
    const uint8_t *m_p;
    const uint8_t *m_end;
};

// Pieces that stress the UTF-8 check: valid multi-byte forms, the edges,
// overlongs, surrogates, truncations, a BOM, NUL.
const char *const Pieces[] = {
        "a", "Z", "1", "-", "_", " ", "\"", "\\", "\n", std::string_view("\0", 1).data(), "\xC3\xA9", "\xE2\x82\xAC",
        "\xF0\x9F\x98\x80", "\xEF\xBB\xBF", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF", "\xC0\x80", "\xE0\x80\xAF",
        "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80", "\xE2\x82", "\x80", "\xFF", "\xF8\x88\x80\x80\x80",
        "\xC2", "\xDF\xBF", "\xE0\xA0\x80", "\xF0\x90\x80\x80", "id", "name", "items"};
constexpr int PieceCount = int(sizeof Pieces / sizeof *Pieces);

QByteArray pieceString(Input &in)
{
    QByteArray s;
    const int n = in.byte() % 8;
    for (int i = 0; i < n; ++i) {
        const int k = in.byte() % PieceCount;
        if (k == 9)
            s.append('\0');
        else
            s.append(Pieces[k]);
    }
    return s;
}

double specialDouble(uint8_t k)
{
    const double values[] = {0.0, -0.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                             std::numeric_limits<double>::quiet_NaN(), 1.5, 9007199254740992.0, 9223372036854775808.0,
                             -9223372036854775808.0, 1e308, 5e-324, 3.0};
    return values[k % (sizeof values / sizeof *values)];
}

// What the model calls UTF-8 text: Qt's own strict decoder, keeping a BOM.
bool isText(const char *data, size_t length, QString *text)
{
    QStringDecoder decoder(QStringDecoder::Utf8,
                           QStringDecoder::Flag::Stateless | QStringDecoder::Flag::ConvertInitialBom);
    *text = decoder.decode(QByteArrayView(data, qsizetype(length)));
    return !decoder.hasError();
}

// ---------------------------------------------------------------------------
// Lua mode

class LuaBuilder
{
public:
    LuaBuilder(lua_State *L, Input &in, int pool) : m_L(L), m_in(in), m_pool(pool) { }

    // Pushes one value.
    void value(int depth)
    {
        lua_State *L = m_L;
        luaL_checkstack(L, 8, "fuzz");
        if (--m_budget < 0 || depth > 160) {
            lua_pushinteger(L, depth);
            return;
        }
        switch (m_in.byte() % 18) {
        case 0: lua_pushnil(L); return;
        case 1: lua_pushboolean(L, m_in.byte() & 1); return;
        case 2: lua_pushinteger(L, int8_t(m_in.byte())); return;
        case 3: lua_pushinteger(L, lua_Integer(m_in.u64())); return;
        case 4: {
            const uint64_t bits = m_in.u64();
            double d;
            std::memcpy(&d, &bits, sizeof d);
            lua_pushnumber(L, d);
            return;
        }
        case 5: lua_pushnumber(L, specialDouble(m_in.byte())); return;
        case 6: {
            const QByteArray b = m_in.bytes(m_in.byte() % 48);
            lua_pushlstring(L, b.constData(), size_t(b.size()));
            return;
        }
        case 7:
        case 8: {
            const QByteArray b = pieceString(m_in);
            lua_pushlstring(L, b.constData(), size_t(b.size()));
            return;
        }
        case 9:
        case 10:
        case 11:
            table(depth);
            return;
        case 12: { // a table made before: shared, or a cycle when it is an ancestor
            const lua_Integer n = lua_Integer(lua_rawlen(L, m_pool));
            if (n == 0) {
                lua_pushboolean(L, 0);
                return;
            }
            lua_rawgeti(L, m_pool, 1 + lua_Integer(m_in.byte()) % n);
            return;
        }
        case 13: { // a chain of single-item tables around a value
            const int levels = 1 + m_in.byte() % 140;
            value(depth + 1);
            for (int i = 0; i < levels; ++i) {
                lua_createtable(L, 1, 0);
                lua_insert(L, -2);
                lua_rawseti(L, -2, 1);
            }
            return;
        }
        case 14: { // a long repeated string
            const QByteArray unit = pieceString(m_in);
            const int times = m_in.byte() * 16;
            const QByteArray b = unit.repeated(times);
            lua_pushlstring(L, b.constData(), size_t(b.size()));
            return;
        }
        case 15:
            if (m_in.byte() % 4 == 0) {
                lua_pushcfunction(L, [](lua_State *) { return 0; });
                return;
            }
            lua_pushinteger(L, 7);
            return;
        case 16:
            if (m_in.byte() % 4 == 0) {
                if (m_in.byte() & 1)
                    lua_newuserdatauv(L, 8, 0);
                else
                    lua_newthread(L);
                return;
            }
            lua_pushinteger(L, 8);
            return;
        default: { // a big sequence, quickly
            const int n = m_in.byte() * 8;
            lua_createtable(L, n, 0);
            for (int i = 1; i <= n; ++i) {
                lua_pushinteger(L, i);
                lua_rawseti(L, -2, i);
            }
            return;
        }
        }
    }

private:
    void table(int depth)
    {
        lua_State *L = m_L;
        lua_newtable(L);
        const int t = lua_gettop(L);
        lua_pushvalue(L, t);
        lua_rawseti(L, m_pool, lua_Integer(lua_rawlen(L, m_pool)) + 1);
        if (m_in.byte() % 8 == 0) // sometimes a metatable, which must not matter
            setMetatable(t);
        const int shape = m_in.byte() % 5;
        const int n = m_in.byte() % 10;
        for (int i = 0; i < n && m_budget > 0; ++i) {
            switch (shape) {
            case 0: lua_pushinteger(L, i + 1); break;           // a sequence
            case 1: lua_pushinteger(L, n - i); break;           // backwards: the hash part
            case 2: pushStringKey(); break;                     // names
            default: pushAnyKey(t); break;                      // anything
            }
            value(depth + 1);
            lua_rawset(L, t);
        }
    }

    void setMetatable(int t)
    {
        lua_State *L = m_L;
        lua_newtable(L);
        lua_pushcfunction(L, [](lua_State *L) { return luaL_error(L, "__index called"); });
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, [](lua_State *L) { return luaL_error(L, "__pairs called"); });
        lua_setfield(L, -2, "__pairs");
        lua_pushcfunction(L, [](lua_State *L) { return luaL_error(L, "__tostring called"); });
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "Thing");
        lua_setfield(L, -2, "__name");
        lua_setmetatable(L, t);
    }

    void pushStringKey()
    {
        const QByteArray b = m_in.byte() % 4 ? pieceString(m_in) : m_in.bytes(m_in.byte() % 12);
        lua_pushlstring(m_L, b.constData(), size_t(b.size()));
    }

    void pushAnyKey(int t)
    {
        lua_State *L = m_L;
        switch (m_in.byte() % 10) {
        case 0: lua_pushinteger(L, int8_t(m_in.byte()) % 12); return;
        case 1: lua_pushinteger(L, lua_Integer(m_in.u64())); return;
        case 2: lua_pushnumber(L, double(int8_t(m_in.byte()) % 8)); return; // integral: an integer key
        case 3: lua_pushnumber(L, 0.5 + int8_t(m_in.byte())); return;       // not integral
        case 4: lua_pushboolean(L, m_in.byte() & 1); return;
        case 5: lua_newtable(L); return;
        case 6: { // a decimal string, to collide with an integer key
            const QByteArray b = QByteArray::number(int(m_in.byte() % 6));
            lua_pushlstring(L, b.constData(), size_t(b.size()));
            return;
        }
        case 7:
            lua_pushinteger(L, lua_Integer(lua_rawlen(L, t)) + 1);
            return;
        default: pushStringKey(); return;
        }
    }

    lua_State *m_L;
    Input &m_in;
    int m_pool;
    int m_budget = 400;
};

// The model, part 1: whether the value at idx must fail to convert. A table
// fails when it is its own ancestor, holds a value that fails, has a key that
// is not an integer or UTF-8 text, has integer key k beside the string key
// "k", or when some path through tables is longer than MaxDepth.
class LuaModel
{
public:
    explicit LuaModel(lua_State *L) : m_L(L) { }

    bool fails(int idx) { return height(lua_absindex(m_L, idx), 1) < 0; }

private:
    // Height of the value (0 for scalars), or -1 when it fails. level: the
    // level a table here would be at.
    int height(int idx, int level)
    {
        lua_State *L = m_L;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
        case LUA_TBOOLEAN:
        case LUA_TNUMBER:
        case LUA_TSTRING:
            return 0;
        case LUA_TTABLE:
            break;
        default:
            return -1;
        }
        const void *id = lua_topointer(L, idx);
        if (m_visiting.count(id))
            return -1;
        if (level > MaxDepth)
            return -1;
        if (auto it = m_heights.find(id); it != m_heights.end())
            return level - 1 + it->second > MaxDepth ? -1 : it->second;
        luaL_checkstack(L, 4, "model");
        m_visiting.insert(id);
        int h = 0;
        std::set<QString> names;
        std::set<lua_Integer> integers;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            bool ok = true;
            if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2)) {
                integers.insert(lua_tointeger(L, -2));
            } else if (lua_type(L, -2) == LUA_TSTRING) {
                size_t length = 0;
                const char *data = lua_tolstring(L, -2, &length);
                QString name;
                ok = isText(data, length, &name);
                names.insert(name);
            } else {
                ok = false;
            }
            const int child = ok ? height(lua_gettop(L), level + 1) : -1;
            if (child < 0) {
                lua_pop(L, 2);
                m_visiting.erase(id);
                return -1;
            }
            h = qMax(h, child);
            lua_pop(L, 1);
        }
        m_visiting.erase(id);
        for (lua_Integer k : integers) {
            if (names.count(QString::number(k)))
                return -1;
        }
        m_heights[id] = h + 1;
        return h + 1;
    }

    lua_State *m_L;
    std::set<const void *> m_visiting;
    std::map<const void *, int> m_heights;
};

// The model, part 2: whether v is exactly what the Lua value at idx should
// read as.
class LuaMatcher
{
public:
    explicit LuaMatcher(lua_State *L) : m_L(L) { }

    void check(int idx, const QVariant &v, const QString &where)
    {
        lua_State *L = m_L;
        idx = lua_absindex(L, idx);
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            CHECK(!v.isValid(), where);
            return;
        case LUA_TBOOLEAN:
            CHECK(v.typeId() == QMetaType::Bool && v.toBool() == bool(lua_toboolean(L, idx)), where);
            return;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) {
                CHECK(v.typeId() == QMetaType::LongLong && v.toLongLong() == lua_tointeger(L, idx), where);
            } else {
                CHECK(v.typeId() == QMetaType::Double, where);
                const double expected = lua_tonumber(L, idx), actual = v.toDouble();
                CHECK((std::isnan(expected) && std::isnan(actual))
                              || std::memcmp(&expected, &actual, sizeof actual) == 0,
                      where);
            }
            return;
        case LUA_TSTRING: {
            size_t length = 0;
            const char *data = lua_tolstring(L, idx, &length);
            QString text;
            if (isText(data, length, &text)) {
                CHECK(v.typeId() == QMetaType::QString && v.toString() == text, where);
            } else {
                CHECK(v.typeId() == QMetaType::QByteArray && v.toByteArray() == QByteArray(data, qsizetype(length)),
                      where);
            }
            return;
        }
        case LUA_TTABLE:
            checkTable(idx, v, where);
            return;
        default:
            die("a value that cannot convert converted", where);
        }
    }

private:
    static const void *dataOf(const QVariant &v)
    {
        if (v.typeId() == QMetaType::QVariantList)
            return static_cast<const QVariantList *>(v.constData())->constData();
        const auto *map = static_cast<const QVariantMap *>(v.constData());
        return map->isEmpty() ? nullptr : &map->cbegin().value();
    }

    void checkTable(int idx, const QVariant &v, const QString &where)
    {
        lua_State *L = m_L;
        luaL_checkstack(L, 4, "matcher");
        // A shared table is checked once against each shared QVariant.
        const bool isList = v.typeId() == QMetaType::QVariantList;
        CHECK(isList || v.typeId() == QMetaType::QVariantMap, where);
        const auto key = std::make_pair(lua_topointer(L, idx), dataOf(v));
        if (key.second && m_checked.count(key))
            return;
        // Count the entries and see whether they are exactly 1..n.
        lua_Integer count = 0;
        bool allIntegers = true;
        lua_Integer maxKey = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            ++count;
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1)) {
                const lua_Integer k = lua_tointeger(L, -1);
                if (k < 1)
                    allIntegers = false;
                maxKey = qMax(maxKey, k);
            } else {
                allIntegers = false;
            }
        }
        const bool sequence = allIntegers && maxKey == count; // distinct keys in 1..n: exactly 1..n
        CHECK(isList == sequence, where + QStringLiteral(" (list/map)"));
        if (isList) {
            const QVariantList list = v.toList();
            CHECK(list.size() == count, where);
            for (lua_Integer i = 1; i <= count; ++i) {
                lua_rawgeti(L, idx, i);
                check(-1, list.at(qsizetype(i - 1)), where + QStringLiteral("[%1]").arg(i));
                lua_pop(L, 1);
            }
        } else {
            const QVariantMap map = v.toMap();
            CHECK(map.size() == count, where);
            lua_pushnil(L);
            while (lua_next(L, idx)) {
                QString name;
                if (lua_type(L, -2) == LUA_TNUMBER) {
                    name = QString::number(lua_tointeger(L, -2));
                } else {
                    size_t length = 0;
                    const char *data = lua_tolstring(L, -2, &length);
                    CHECK(isText(data, length, &name), where);
                }
                CHECK(map.contains(name), where + QStringLiteral(" key ") + name);
                check(-1, map.value(name), where + QStringLiteral(".") + name);
                lua_pop(L, 1);
            }
        }
        if (key.second)
            m_checked.insert(key);
    }

    lua_State *m_L;
    std::set<std::pair<const void *, const void *>> m_checked;
};

// Strict QVariant equality: types at every level, doubles by bits, NaN == NaN.
bool same(const QVariant &a, const QVariant &b, int budget = 1 << 20)
{
    if (a.metaType() != b.metaType())
        return false;
    switch (a.typeId()) {
    case QMetaType::Double: {
        const double x = a.toDouble(), y = b.toDouble();
        return (std::isnan(x) && std::isnan(y)) || std::memcmp(&x, &y, sizeof x) == 0;
    }
    case QMetaType::QVariantList: {
        const QVariantList x = a.toList(), y = b.toList();
        if (x.size() != y.size())
            return false;
        if (x.constData() == y.constData())
            return true;
        for (qsizetype i = 0; i < x.size(); ++i) {
            if (!same(x[i], y[i], budget / 2))
                return false;
        }
        return true;
    }
    case QMetaType::QVariantMap: {
        const QVariantMap x = a.toMap(), y = b.toMap();
        if (x.size() != y.size())
            return false;
        for (auto i = x.cbegin(), j = y.cbegin(); i != x.cend(); ++i, ++j) {
            if (i.key() != j.key() || !same(i.value(), j.value(), budget / 2))
                return false;
        }
        return true;
    }
    default:
        return a == b;
    }
}

// Values in v with shared containers counted at each place, saturating.
qint64 expandedSize(const QVariant &v, std::map<const void *, qint64> *memo = nullptr)
{
    std::map<const void *, qint64> local;
    if (!memo)
        memo = &local;
    if (v.typeId() != QMetaType::QVariantList && v.typeId() != QMetaType::QVariantMap)
        return 1;
    const void *id = v.typeId() == QMetaType::QVariantList
            ? static_cast<const void *>(static_cast<const QVariantList *>(v.constData())->constData())
            : static_cast<const void *>(static_cast<const QVariantMap *>(v.constData())->isEmpty()
                                                ? nullptr
                                                : &static_cast<const QVariantMap *>(v.constData())->cbegin().value());
    if (!id)
        return 1;
    if (auto it = memo->find(id); it != memo->end())
        return it->second;
    qint64 n = 1;
    if (v.typeId() == QMetaType::QVariantList) {
        for (const QVariant &item : *static_cast<const QVariantList *>(v.constData()))
            n = qMin<qint64>(n + expandedSize(item, memo), qint64(1) << 40);
    } else {
        for (const QVariant &item : *static_cast<const QVariantMap *>(v.constData()))
            n = qMin<qint64>(n + expandedSize(item, memo), qint64(1) << 40);
    }
    (*memo)[id] = n;
    return n;
}

bool isSharedExpansionError(const QIsleError &e)
{
    return e.message().contains(QStringLiteral("containers shared within the value would expand"));
}

void runLua(lua_State *L, Input &in)
{
    const int base = lua_gettop(L);
    lua_newtable(L); // the pool of tables made so far
    const int pool = lua_gettop(L);
    LuaBuilder(L, in, pool).value(0);
    const int top = lua_gettop(L);
    CHECK(top == pool + 1);

    const bool mustFail = LuaModel(L).fails(-1);
    CHECK(lua_gettop(L) == top);
    QVariant v;
    try {
        v = QIsleValue::read(L, -1, QStringLiteral("v"));
    } catch (const QIsleError &e) {
        CHECK(e.kind() == QIsleError::Kind::Conversion, e.message());
        CHECK(e.message().startsWith(QLatin1String("v")), e.message());
        CHECK(lua_gettop(L) == top, QStringLiteral("stack after a failed read"));
        CHECK(mustFail, QStringLiteral("read failed, the model says it converts: ") + e.message());
        lua_settop(L, base);
        return;
    }
    CHECK(lua_gettop(L) == top, QStringLiteral("stack after read"));
    CHECK(!mustFail, QStringLiteral("read converted, the model says it fails"));
    LuaMatcher(L).check(-1, v, QStringLiteral("v"));

    // And back -- unless reading shared what Lua shared so much that the
    // copy would be huge (writing copies; tst_value covers that limit).
    if (expandedSize(v) > 200000) {
        lua_settop(L, base);
        return;
    }
    try {
        QIsleValue::push(L, v, QStringLiteral("back"));
    } catch (const QIsleError &e) {
        // Reading shares what Lua shared; writing copies, within an allowance.
        CHECK(e.kind() == QIsleError::Kind::Conversion && isSharedExpansionError(e), e.message());
        CHECK(lua_gettop(L) == top, QStringLiteral("stack after a failed push"));
        lua_settop(L, base);
        return;
    }
    CHECK(lua_gettop(L) == top + 1, QStringLiteral("stack after push"));
    LuaMatcher(L).check(-1, v, QStringLiteral("back"));
    const QVariant again = QIsleValue::read(L, -1, QStringLiteral("again"));
    CHECK(same(again, v), QStringLiteral("read(push(read(x))) != read(x)"));
    lua_settop(L, base);
}

// ---------------------------------------------------------------------------
// QVariant mode

struct Built
{
    QVariant value;
    bool fails = false; // push must fail
    int height = 0;     // containers on the longest path
};

class VariantBuilder
{
public:
    explicit VariantBuilder(Input &in) : m_in(in) { }

    Built value(int depth)
    {
        if (--m_budget < 0 || depth > 140)
            return scalar(QVariant(qlonglong(depth)));
        switch (m_in.byte() % 26) {
        case 0: return scalar(QVariant());
        case 1: return scalar(QVariant::fromValue(nullptr));
        case 2: return scalar(QVariant(bool(m_in.byte() & 1)));
        case 3: return scalar(QVariant(int(int32_t(m_in.u64()))));
        case 4: return scalar(QVariant(qlonglong(m_in.u64())));
        case 5: { // unsigned: fails past lua_Integer
            const quint64 x = m_in.u64();
            Built b = scalar(QVariant::fromValue(x));
            b.fails = x > quint64(std::numeric_limits<qlonglong>::max());
            return b;
        }
        case 6: return scalar(QVariant::fromValue(uint(m_in.u64())));
        case 7: return scalar(QVariant::fromValue(short(m_in.u64())));
        case 8: {
            const uint64_t bits = m_in.u64();
            double d;
            std::memcpy(&d, &bits, sizeof d);
            return scalar(QVariant(d));
        }
        case 9: return scalar(QVariant::fromValue(float(specialDouble(m_in.byte()))));
        case 10:
        case 11: return string();
        case 12: return scalar(QVariant(m_in.byte() & 1 ? pieceString(m_in) : m_in.bytes(m_in.byte() % 24)));
        case 13: {
            QStringList list;
            bool fails = depth >= MaxDepth;
            const int n = m_in.byte() % 5;
            for (int i = 0; i < n; ++i) {
                Built s = string();
                fails |= s.fails;
                list << s.value.toString();
            }
            return Built{QVariant(list), fails, 1};
        }
        case 14:
        case 15:
        case 16:
            return list(depth);
        case 17:
        case 18:
            return map(depth, false);
        case 19:
            return map(depth, true);
        case 20: { // JSON, through QJsonValue::fromVariant of what we build
            Built inner = value(depth);
            if (inner.fails || !isJsonable(inner.value))
                return inner;
            const QJsonValue json = QJsonValue::fromVariant(inner.value);
            switch (m_in.byte() % 3) {
            case 0: return Built{QVariant(json), false, inner.height};
            case 1: return Built{json.isArray() ? QVariant(json.toArray()) : QVariant(json), false, inner.height};
            default: return Built{json.isObject() ? QVariant(json.toObject()) : QVariant(json), false, inner.height};
            }
        }
        case 21: { // unsupported types
            Built b = scalar(m_in.byte() & 1 ? QVariant(QDateTime()) : QVariant(QUrl()));
            b.fails = true;
            return b;
        }
        case 22: { // a chain of lists
            const int levels = 1 + m_in.byte() % 140;
            Built b = value(depth + levels);
            for (int i = 0; i < levels; ++i)
                b = Built{QVariant(QVariantList{b.value}), b.fails, b.height + 1};
            b.fails |= depth + b.height > MaxDepth;
            return b;
        }
        case 23: { // the same container twice: shared, copied on push
            if (++m_twice > 10)
                return scalar(QVariant(true));
            Built b = value(depth + 1);
            return Built{QVariant(QVariantList{b.value, b.value}), b.fails || depth >= MaxDepth, b.height + 1};
        }
        case 24: return scalar(QVariant::fromValue(char16_t(m_in.u64())));
        default: {
            const int x = int8_t(m_in.byte());
            return Built{QVariant::fromValue(QList<int>{x, x + 1}), depth >= MaxDepth, 1};
        }
        }
    }

private:
    static Built scalar(const QVariant &v) { return Built{v, false, 0}; }

    Built string()
    {
        QString s;
        const int n = m_in.byte() % 8;
        for (int i = 0; i < n; ++i) {
            switch (m_in.byte() % 6) {
            case 0: s += QChar(u'a' + m_in.byte() % 26); break;
            case 1: s += QChar(0xE9); break;
            case 2: s += QString::fromUtf8("\xF0\x9F\x98\x80"); break;
            case 3: s += QChar(0xFEFF); break;
            case 4: s += QChar(0); break;
            default: s += QChar(char16_t(0xD800 + (m_in.byte() % 2) * 0x400 + m_in.byte())); break; // a surrogate
            }
        }
        if (m_in.byte() % 8 == 0)
            s = s.repeated(100); // past the short-string path
        // An unpaired surrogate fails; pairs are text.
        bool lone = false;
        for (qsizetype i = 0; i < s.size(); ++i) {
            if (s[i].isHighSurrogate() && i + 1 < s.size() && s[i + 1].isLowSurrogate()) {
                ++i;
                continue;
            }
            if (s[i].isSurrogate())
                lone = true;
        }
        Built b = scalar(QVariant(s));
        b.fails = lone;
        return b;
    }

    Built list(int depth)
    {
        QVariantList items;
        bool fails = depth >= MaxDepth;
        int height = 0;
        const int n = m_in.byte() % 8;
        for (int i = 0; i < n; ++i) {
            Built b = value(depth + 1);
            items << b.value;
            fails |= b.fails;
            height = qMax(height, b.height);
        }
        return Built{QVariant(items), fails, height + 1};
    }

    // Items 1..n where some may be nil: a list when the present ones are
    // exactly 1..k, else a map with decimal keys.
    static QVariant fromSlots(const std::vector<QVariant> &items)
    {
        QVariantList present;
        QVariantMap map;
        bool gap = false;
        for (size_t i = 0; i < items.size(); ++i) {
            if (!items[i].isValid()) {
                gap = true;
                continue;
            }
            map.insert(QString::number(i + 1), items[i]);
            if (!gap)
                present << items[i];
        }
        if (map.size() == present.size())
            return QVariant(present);
        return QVariant(map);
    }

    Built map(int depth, bool hash)
    {
        QVariantMap m;
        QVariantHash h;
        bool fails = depth >= MaxDepth;
        int height = 0;
        const int n = m_in.byte() % 6;
        for (int i = 0; i < n; ++i) {
            Built key = string();
            Built b = value(depth + 1);
            const QString k = key.value.toString();
            if (hash)
                h.insert(k, b.value);
            else
                m.insert(k, b.value);
            fails |= key.fails || b.fails;
            height = qMax(height, b.height);
        }
        // A key inserted twice keeps its last value: recompute what fails.
        if (fails && !(depth >= MaxDepth)) {
            fails = false;
            height = 0;
            const auto account = [&](const QString &k, const QVariant &item) {
                fails |= hasLoneSurrogate(k) || failsAt(item, depth + 1, &height);
            };
            if (hash) {
                for (auto it = h.cbegin(); it != h.cend(); ++it)
                    account(it.key(), it.value());
            } else {
                for (auto it = m.cbegin(); it != m.cend(); ++it)
                    account(it.key(), it.value());
            }
        }
        return Built{hash ? QVariant(h) : QVariant(m), fails, height + 1};
    }

    static bool hasLoneSurrogate(const QString &s)
    {
        for (qsizetype i = 0; i < s.size(); ++i) {
            if (s[i].isHighSurrogate() && i + 1 < s.size() && s[i + 1].isLowSurrogate()) {
                ++i;
                continue;
            }
            if (s[i].isSurrogate())
                return true;
        }
        return false;
    }

    // Whether pushing v at depth fails (the model again, for values that a
    // map's duplicate key replaced); raises *height to v's height.
    static bool failsAt(const QVariant &v, int depth, int *height)
    {
        switch (v.typeId()) {
        case QMetaType::QString:
            return hasLoneSurrogate(v.toString());
        case QMetaType::ULongLong:
            return v.toULongLong() > quint64(std::numeric_limits<qlonglong>::max());
        case QMetaType::QDateTime:
        case QMetaType::QUrl:
            return true;
        case QMetaType::QStringList: {
            *height = qMax(*height, 1);
            bool fails = depth >= MaxDepth;
            for (const QString &s : v.toStringList())
                fails |= hasLoneSurrogate(s);
            return fails;
        }
        case QMetaType::QVariantList:
        case QMetaType::QVariantMap:
        case QMetaType::QVariantHash: {
            bool fails = depth >= MaxDepth;
            int h = 0;
            if (v.typeId() == QMetaType::QVariantList) {
                for (const QVariant &item : v.toList())
                    fails |= failsAt(item, depth + 1, &h);
            } else if (v.typeId() == QMetaType::QVariantMap) {
                const QVariantMap m = v.toMap();
                for (auto it = m.cbegin(); it != m.cend(); ++it)
                    fails |= hasLoneSurrogate(it.key()) || failsAt(it.value(), depth + 1, &h);
            } else {
                const QVariantHash m = v.toHash();
                for (auto it = m.cbegin(); it != m.cend(); ++it)
                    fails |= hasLoneSurrogate(it.key()) || failsAt(it.value(), depth + 1, &h);
            }
            *height = qMax(*height, h + 1);
            return fails;
        }
        default:
            if (v.metaType() == QMetaType::fromType<QList<int>>()) {
                *height = qMax(*height, 1);
                return depth >= MaxDepth;
            }
            if (v.typeId() == QMetaType::QJsonValue || v.typeId() == QMetaType::QJsonArray
                || v.typeId() == QMetaType::QJsonObject) {
                const QJsonValue json = v.typeId() == QMetaType::QJsonValue ? v.toJsonValue()
                        : v.typeId() == QMetaType::QJsonArray              ? QJsonValue(v.toJsonArray())
                                                                            : QJsonValue(v.toJsonObject());
                return failsAt(json.toVariant(), depth, height);
            }
            return false;
        }
    }

    // Values QJsonValue::fromVariant keeps as they are (no NaN, no bytes).
    static bool isJsonable(const QVariant &v)
    {
        switch (v.typeId()) {
        case QMetaType::UnknownType:
        case QMetaType::Nullptr:
        case QMetaType::Bool:
        case QMetaType::Int:
        case QMetaType::LongLong:
        case QMetaType::QString:
            return true;
        case QMetaType::Double:
            return std::isfinite(v.toDouble());
        case QMetaType::QVariantList:
            for (const QVariant &item : v.toList()) {
                if (!isJsonable(item))
                    return false;
            }
            return true;
        case QMetaType::QVariantMap: {
            const QVariantMap m = v.toMap();
            for (auto it = m.cbegin(); it != m.cend(); ++it) {
                if (!isJsonable(it.value()))
                    return false;
            }
            return true;
        }
        default:
            return false;
        }
    }

public:
    // What reading a pushed supported value gives (the documented mapping).
    static QVariant normalize(const QVariant &v)
    {
        switch (v.typeId()) {
        case QMetaType::UnknownType:
        case QMetaType::Nullptr:
            return {};
        case QMetaType::Bool:
            return v;
        case QMetaType::Int:
        case QMetaType::UInt:
        case QMetaType::Short:
        case QMetaType::LongLong:
        case QMetaType::ULongLong:
            return QVariant(v.toLongLong());
        case QMetaType::Char16:
            return QVariant(qlonglong(*static_cast<const char16_t *>(v.constData())));
        case QMetaType::Double:
            return v;
        case QMetaType::Float:
            return QVariant(double(v.toFloat()));
        case QMetaType::QString:
            return QVariant(v.toString());
        case QMetaType::QByteArray: {
            const QByteArray b = v.toByteArray();
            QString text;
            return isText(b.constData(), size_t(b.size()), &text) ? QVariant(text) : v;
        }
        case QMetaType::QStringList: {
            QVariantList items;
            for (const QString &s : v.toStringList())
                items << s;
            return QVariant(items);
        }
        case QMetaType::QVariantList: {
            std::vector<QVariant> items;
            for (const QVariant &item : v.toList())
                items.push_back(normalize(item));
            return fromSlots(items);
        }
        case QMetaType::QVariantMap:
        case QMetaType::QVariantHash: {
            QVariantMap out;
            const QVariantMap in = v.typeId() == QMetaType::QVariantMap ? v.toMap() : [&] {
                QVariantMap m;
                const QVariantHash h = v.toHash();
                for (auto it = h.cbegin(); it != h.cend(); ++it)
                    m.insert(it.key(), it.value());
                return m;
            }();
            for (auto it = in.cbegin(); it != in.cend(); ++it) {
                const QVariant item = normalize(it.value());
                if (item.isValid())
                    out.insert(it.key(), item);
            }
            if (out.isEmpty())
                return QVariant(QVariantList());
            return QVariant(out);
        }
        case QMetaType::QJsonValue:
            return normalize(v.toJsonValue().toVariant());
        case QMetaType::QJsonArray:
            return normalize(QJsonValue(v.toJsonArray()).toVariant());
        case QMetaType::QJsonObject:
            return normalize(QJsonValue(v.toJsonObject()).toVariant());
        default:
            if (v.metaType() == QMetaType::fromType<QList<int>>()) {
                QVariantList items;
                for (int x : v.value<QList<int>>())
                    items << qlonglong(x);
                return QVariant(items);
            }
            return v;
        }
    }

private:
    Input &m_in;
    int m_budget = 300;
    int m_twice = 0;
};

void runVariant(lua_State *L, Input &in)
{
    const int base = lua_gettop(L);
    const Built built = VariantBuilder(in).value(0);
    try {
        QIsleValue::push(L, built.value, QStringLiteral("arg"));
    } catch (const QIsleError &e) {
        CHECK(e.kind() == QIsleError::Kind::Conversion, e.message());
        CHECK(e.message().startsWith(QLatin1String("arg")), e.message());
        CHECK(lua_gettop(L) == base, QStringLiteral("stack after a failed push"));
        CHECK(built.fails || isSharedExpansionError(e), QStringLiteral("push failed, the model says it converts: ") + e.message());
        return;
    }
    CHECK(!built.fails, QStringLiteral("push converted, the model says it fails"));
    CHECK(lua_gettop(L) == base + 1, QStringLiteral("stack after push"));
    const QVariant back = QIsleValue::read(L, -1, QStringLiteral("back"));
    const QVariant expected = VariantBuilder::normalize(built.value);
    CHECK(same(back, expected), QStringLiteral("read(push(v)) is not the model's: ") + QDebug::toString(back)
                  + QStringLiteral(" vs ") + QDebug::toString(expected));
    LuaMatcher(L).check(-1, back, QStringLiteral("back"));
    lua_settop(L, base);
}

lua_State *state()
{
    static lua_State *L = [] {
        lua_State *s = luaL_newstate();
        luaL_openlibs(s);
        return s;
    }();
    return L;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static QCoreApplication app(*argc, *argv);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in(data, size);
    lua_State *L = state();
    if (in.byte() & 1)
        runVariant(L, in);
    else
        runLua(L, in);
    CHECK(lua_gettop(L) == 0, QStringLiteral("stack left behind"));
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
