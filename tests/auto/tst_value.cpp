// The value bridge: every row of README's Values table, both ways, through
// eval, call, exec and registerFunction; Conversion errors with their exact
// path; limits (depth, size, shared containers); the VM serving on.
#include <QIsle/QIsle>

#include <QtCore/QDateTime>
#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QSize>
#include <QtCore/QUrl>
#include <QtCore/QUuid>
#include <QtCore/qfloat16.h>
#include <QtTest/QtTest>

#include <QIsle/QIsleLua>

#include <cmath>
#include <limits>
#include <vector>

using namespace Qt::StringLiterals;

namespace {

// dump(v): a canonical text of a Lua value with every type and subtype
// spelled out, so a row can say exactly what Lua got.
constexpr char LuaHelpers[] = R"lua(
local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end
function dump(v)
  local t = type(v)
  if t == 'nil' then return 'nil' end
  if t == 'boolean' then return tostring(v) end
  if t == 'number' then
    if math.type(v) == 'integer' then return 'i' .. v end
    if v ~= v then return 'fnan' end
    if v == 0 and 1 / v < 0 then return 'f-0' end
    return 'f' .. string.format('%.17g', v)
  end
  if t == 'string' then return 's:' .. hex(v) end
  if t == 'table' then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    local parts = {}
    for _, k in ipairs(keys) do
      parts[#parts + 1] = (type(k) == 'string' and k or ('#' .. k)) .. '=' .. dump(v[k])
    end
    return '{' .. table.concat(parts, ',') .. '}'
  end
  return '<' .. t .. '>'
end
function echo(...) return ... end
function kind(v) return math.type(v) or type(v) end
function len(v) return #v end
function nest(n) local t = {} for i = 2, n do t = {t} end return t end
ran = 0
function mark(...) ran = ran + 1 return true end
)lua";

// "s:" + hex, as dump() spells a string.
QString s(const QByteArray &bytes)
{
    return "s:"_L1 + QString::fromLatin1(bytes.toHex());
}

// Strict equality: same type at every level (qlonglong is not int, QString
// is not QByteArray), doubles by bits but NaN == NaN.
bool same(const QVariant &a, const QVariant &b, QString *why, const QString &at = u"value"_s)
{
    if (a.metaType() != b.metaType()) {
        *why = at + ": type "_L1 + QLatin1String(a.typeName() ? a.typeName() : "invalid") + " vs "_L1
                + QLatin1String(b.typeName() ? b.typeName() : "invalid");
        return false;
    }
    switch (a.typeId()) {
    case QMetaType::UnknownType:
        return true;
    case QMetaType::Double: {
        const double x = a.toDouble(), y = b.toDouble();
        if ((std::isnan(x) && std::isnan(y)) || (x == y && std::signbit(x) == std::signbit(y)))
            return true;
        *why = at + u": %1 vs %2"_s.arg(x, 0, 'g', 17).arg(y, 0, 'g', 17);
        return false;
    }
    case QMetaType::QVariantList: {
        const QVariantList x = a.toList(), y = b.toList();
        if (x.size() != y.size()) {
            *why = at + u": %1 vs %2 items"_s.arg(x.size()).arg(y.size());
            return false;
        }
        for (qsizetype i = 0; i < x.size(); ++i) {
            if (!same(x[i], y[i], why, at + u"[%1]"_s.arg(i + 1)))
                return false;
        }
        return true;
    }
    case QMetaType::QVariantMap: {
        const QVariantMap x = a.toMap(), y = b.toMap();
        if (x.keys() != y.keys()) {
            *why = at + ": keys "_L1 + x.keys().join(u',') + " vs "_L1 + y.keys().join(u',');
            return false;
        }
        for (auto it = x.cbegin(); it != x.cend(); ++it) {
            if (!same(it.value(), y.value(it.key()), why, at + u'.' + it.key()))
                return false;
        }
        return true;
    }
    default:
        if (a == b)
            return true;
        *why = at + ": "_L1 + QDebug::toString(a) + " vs "_L1 + QDebug::toString(b);
        return false;
    }
}

#define QVERIFY_SAME(actual, expected)                                                                   \
    do {                                                                                                 \
        QString why_;                                                                                    \
        QVERIFY2(same((actual), (expected), &why_), qPrintable(why_));                                   \
    } while (false)

template<typename T>
QVariant v(T value)
{
    return QVariant::fromValue(value);
}

QVariantList list(std::initializer_list<QVariant> items)
{
    return QVariantList(items);
}

QVariantMap map(std::initializer_list<std::pair<const QString, QVariant>> items)
{
    return QVariantMap(items);
}

// n nested lists, the innermost holding 1: [[[1]]] is nestedList(3).
QVariant nestedList(int n)
{
    QVariant value = QVariantList{qlonglong(1)};
    for (int i = 1; i < n; ++i)
        value = QVariantList{value};
    return value;
}

// The depth of the first-item chain.
int depthOf(QVariant value)
{
    int depth = 0;
    while (value.typeId() == QMetaType::QVariantList) {
        ++depth;
        const QVariantList items = value.toList();
        if (items.isEmpty())
            break;
        value = items.constFirst();
    }
    return depth;
}

// Keys whose order is QString's (UTF-16 code units, then length), not
// bytes' or code points': U+10000 (a surrogate pair) sorts before U+E000;
// keys that are prefixes of others, with U+0000 in them, alike in their
// first eight units, longer than Lua's short strings.
QStringList awkwardKeys()
{
    const QString a40 = QString(40, u'a');
    return {u""_s, u"a"_s, u"a"_s + QChar(0), u"ab"_s, u"Z"_s, u"z"_s, u"abcdefgg"_s, u"abcdefgh"_s,
            u"abcdefgh"_s + QChar(0), u"abcdefghi"_s, u"abcdefgi"_s, QString(QChar(0xE000)),
            QString::fromUcs4(U"\U00010000"), QString(QChar(0xFFFF)), QString(QChar(0xE9)), QString(QChar(0x7F)),
            QString(QChar(0x80)), a40 + u"1"_s, a40 + u"0"_s, a40, u"abcdefgh\u00e9"_s};
}

// A Lua string literal of text's UTF-8 bytes, escaped byte by byte.
QString luaLiteral(const QString &text)
{
    QString literal = u"'"_s;
    for (const char c : text.toUtf8())
        literal += u"\\x%1"_s.arg(uint(uchar(c)), 2, 16, QLatin1Char('0'));
    return literal + u"'"_s;
}

// Lua: `count` tables, each with keys[j] = i * 1000 + j (i: the table, j:
// the key, from 1), made alike (so lua_next gives their keys in one order).
QString keyedTables(const QStringList &keys, int count)
{
    QStringList literals;
    for (const QString &key : keys)
        literals += luaLiteral(key);
    return u"(function() local keys = {%1} local r = {} for i = 1, %2 do local t = {} "
           "for j, k in ipairs(keys) do t[k] = i * 1000 + j end r[i] = t end return r end)()"_s
            .arg(literals.join(u','))
            .arg(count);
}

QVariant keyedMaps(const QStringList &keys, int count)
{
    QVariantList tables;
    for (int i = 1; i <= count; ++i) {
        QVariantMap t;
        for (int j = 1; j <= keys.size(); ++j)
            t.insert(keys[j - 1], qlonglong(i * 1000 + j));
        tables.append(t);
    }
    return tables;
}

QString repeated(const QString &segment, int n)
{
    QString text;
    for (int i = 0; i < n; ++i)
        text += segment;
    return text;
}

} // namespace

class tst_Value : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();

    // Lua -> QVariant
    void luaToVariant_data();
    void luaToVariant();
    void nanAndInfinity();
    void hostFunctionReceives_data();
    void hostFunctionReceives();
    void execRead_data();
    void execRead();

    // QVariant -> Lua
    void variantToLua_data();
    void variantToLua();
    void execPush_data();
    void execPush();
    void hostFunctionResults_data();
    void hostFunctionResults();
    void emitValues();

    // Round trips
    void roundTripThroughCall_data();
    void roundTripThroughCall();
    void roundTripThroughLua_data();
    void roundTripThroughLua();

    // Errors
    void readErrors_data();
    void readErrors();
    void pushErrors_data();
    void pushErrors();
    void failedArgumentsRunNothing();
    void hostFunctionErrors();
    void execErrorsKeepStack();
    void defaultWhere();

    // Limits
    void depthLimitRead();
    void depthLimitPush();
    void sharedTablesRead();
    void sharedContainersPush();
    void millionEntries();
    void hundredMegabyteString();

private:
    std::unique_ptr<QIsle> m_isle;
    QVariantList m_captured;
};

void tst_Value::initTestCase()
{
    m_isle = QIsle::spawn([](lua_State *L) {
        if (luaL_dostring(L, LuaHelpers) != LUA_OK)
            lua_error(L);
    });
    m_isle->registerFunction(u"host.echo"_s, [](const QVariantList &args) { return args.value(0); });
    m_isle->registerFunction(u"host.args"_s, [](const QVariantList &args) { return QVariant(args); });
    m_isle->registerFunction(u"host.capture"_s, [this](const QVariantList &args) {
        m_captured = args; // on the Lua thread; read after the blocking eval returned
        return QVariant(true);
    });
}

void tst_Value::cleanupTestCase()
{
    m_isle.reset();
}

// ---------------------------------------------------------------------------
// Lua -> QVariant

void tst_Value::luaToVariant_data()
{
    QTest::addColumn<QString>("expression");
    QTest::addColumn<QVariant>("expected");

    QTest::addRow("nil") << u"nil"_s << QVariant();
    QTest::addRow("nothing") << u"(function() end)()"_s << QVariant();
    QTest::addRow("true") << u"true"_s << QVariant(true);
    QTest::addRow("false") << u"false"_s << QVariant(false);

    // The integer/float subtype is kept.
    QTest::addRow("integer") << u"3"_s << v(qlonglong(3));
    QTest::addRow("float") << u"3.0"_s << QVariant(3.0);
    QTest::addRow("integer 0") << u"0"_s << v(qlonglong(0));
    QTest::addRow("negative integer") << u"-42"_s << v(qlonglong(-42));
    QTest::addRow("maxinteger") << u"math.maxinteger"_s << v(std::numeric_limits<qlonglong>::max());
    QTest::addRow("mininteger") << u"math.mininteger"_s << v(std::numeric_limits<qlonglong>::min());
    QTest::addRow("integer division") << u"7 // 2"_s << v(qlonglong(3));
    QTest::addRow("float division") << u"7 / 7"_s << QVariant(1.0);
    QTest::addRow("2^53 is a float") << u"2^53"_s << QVariant(9007199254740992.0);
    QTest::addRow("0.5") << u"0.5"_s << QVariant(0.5);
    QTest::addRow("-0.0") << u"-0.0"_s << QVariant(-0.0);
    QTest::addRow("huge float") << u"1e308"_s << QVariant(1e308);
    QTest::addRow("tiny float") << u"5e-324"_s << QVariant(5e-324);
    QTest::addRow("inf") << u"math.huge"_s << QVariant(std::numeric_limits<double>::infinity());
    QTest::addRow("-inf") << u"-math.huge"_s << QVariant(-std::numeric_limits<double>::infinity());

    // UTF-8 text is QString, exactly (NUL, BOM, noncharacters kept).
    QTest::addRow("empty string") << u"''"_s << QVariant(u""_s);
    QTest::addRow("ascii") << u"'hello'"_s << QVariant(u"hello"_s);
    QTest::addRow("utf8") << u"'\\u{FC}\\u{20AC}\\u{1F600}'"_s << QVariant(QString::fromUtf8("ü€😀"));
    QTest::addRow("embedded NUL text") << u"'a\\0b'"_s << QVariant(QString::fromUtf16(u"a\0b", 3));
    QTest::addRow("only NULs") << u"'\\0\\0'"_s << QVariant(QString(2, QChar(0)));
    QTest::addRow("byte order mark") << u"'\\u{FEFF}x'"_s << QVariant(QChar(0xFEFF) + u"x"_s);
    QTest::addRow("two byte order marks") << u"'\\u{FEFF}\\u{FEFF}'"_s << QVariant(QString(2, QChar(0xFEFF)));
    QTest::addRow("U+10FFFF") << u"'\\u{10FFFF}'"_s << QVariant(QString::fromUcs4(U"\U0010FFFF", 1));
    QTest::addRow("noncharacter U+FFFF") << u"'\\u{FFFF}'"_s << QVariant(QString(QChar(0xFFFF)));
    QTest::addRow("long utf8") << u"('\\u{E9}'):rep(1000)"_s << QVariant(QString(1000, QChar(0xE9)));

    // Other bytes are QByteArray, exactly.
    QTest::addRow("byte ff") << u"'\\xff'"_s << QVariant(QByteArray("\xff"));
    QTest::addRow("bytes with NUL") << u"'a\\0\\xff'"_s << QVariant(QByteArray("a\0\xff", 3));
    QTest::addRow("overlong NUL") << u"'\\xC0\\x80'"_s << QVariant(QByteArray("\xC0\x80"));
    QTest::addRow("overlong slash") << u"'\\xE0\\x80\\xAF'"_s << QVariant(QByteArray("\xE0\x80\xAF"));
    QTest::addRow("encoded surrogate") << u"'\\xED\\xA0\\x80'"_s << QVariant(QByteArray("\xED\xA0\x80"));
    QTest::addRow("past U+10FFFF") << u"'\\xF4\\x90\\x80\\x80'"_s << QVariant(QByteArray("\xF4\x90\x80\x80"));
    QTest::addRow("truncated") << u"'ok\\xE2\\x82'"_s << QVariant(QByteArray("ok\xE2\x82"));
    QTest::addRow("lone continuation") << u"'\\x80'"_s << QVariant(QByteArray("\x80"));
    QTest::addRow("five-byte form") << u"'\\xF8\\x88\\x80\\x80\\x80'"_s << QVariant(QByteArray("\xF8\x88\x80\x80\x80"));
    QTest::addRow("binary after long ascii") << u"('a'):rep(100) .. '\\xff'"_s
                                              << QVariant(QByteArray(100, 'a') + "\xff");

    // Sequences are lists; the empty table is an empty list.
    QTest::addRow("empty table") << u"{}"_s << QVariant(QVariantList());
    QTest::addRow("sequence") << u"{1, 2, 3}"_s << QVariant(list({qlonglong(1), qlonglong(2), qlonglong(3)}));
    QTest::addRow("mixed sequence") << u"{'a', 1.5, true, {}}"_s
                                    << QVariant(list({u"a"_s, 1.5, true, QVariantList()}));
    QTest::addRow("sequence built backwards")
            << u"(function() local t = {} for i = 5, 1, -1 do t[i] = i * 10 end return t end)()"_s
            << QVariant(list({qlonglong(10), qlonglong(20), qlonglong(30), qlonglong(40), qlonglong(50)}));
    QTest::addRow("sequence in the hash part") << u"{[3] = 'c', [1] = 'a', [2] = 'b'}"_s
                                               << QVariant(list({u"a"_s, u"b"_s, u"c"_s}));
    QTest::addRow("nested sequences") << u"{{1}, {{2}}}"_s
                                      << QVariant(list({list({qlonglong(1)}), list({list({qlonglong(2)})})}));

    // Other tables are maps; integer keys in decimal.
    QTest::addRow("map") << u"{a = 1, b = 'x'}"_s << QVariant(map({{u"a"_s, qlonglong(1)}, {u"b"_s, u"x"_s}}));
    QTest::addRow("hole") << u"{1, nil, 3}"_s << QVariant(map({{u"1"_s, qlonglong(1)}, {u"3"_s, qlonglong(3)}}));
    QTest::addRow("starts at 2") << u"{[2] = 'b'}"_s << QVariant(map({{u"2"_s, u"b"_s}}));
    QTest::addRow("zero key") << u"{[0] = 'z', 'a'}"_s << QVariant(map({{u"0"_s, u"z"_s}, {u"1"_s, u"a"_s}}));
    QTest::addRow("negative key") << u"{[-5] = true}"_s << QVariant(map({{u"-5"_s, true}}));
    QTest::addRow("huge keys") << u"{[math.maxinteger] = 1, [math.mininteger] = 2}"_s
                               << QVariant(map({{u"9223372036854775807"_s, qlonglong(1)},
                                                {u"-9223372036854775808"_s, qlonglong(2)}}));
    QTest::addRow("float key that is integral") << u"{[2.0] = 'two'}"_s << QVariant(map({{u"2"_s, u"two"_s}}));
    QTest::addRow("sequence and names") << u"{10, 20, x = 'y'}"_s
                                        << QVariant(map({{u"1"_s, qlonglong(10)}, {u"2"_s, qlonglong(20)},
                                                         {u"x"_s, u"y"_s}}));
    QTest::addRow("numeric string keys") << u"{['1'] = 'a', ['2'] = 'b'}"_s
                                         << QVariant(map({{u"1"_s, u"a"_s}, {u"2"_s, u"b"_s}}));
    QTest::addRow("utf8 keys") << u"{['\\u{FC}ber'] = 1, [''] = 2, ['a b'] = 3}"_s
                               << QVariant(map({{QString::fromUtf8("über"), qlonglong(1)},
                                                {u""_s, qlonglong(2)}, {u"a b"_s, qlonglong(3)}}));
    QTest::addRow("nested map") << u"{settings = {volume = 0.5, muted = false, tags = {'a', 'b'}}}"_s
                                << QVariant(map({{u"settings"_s,
                                                  map({{u"volume"_s, 0.5}, {u"muted"_s, false},
                                                       {u"tags"_s, list({u"a"_s, u"b"_s})}})}}));
    QTest::addRow("rows") << u"{{id = 1, name = 'a'}, {id = 2, name = '\\xff'}}"_s
                          << QVariant(list({map({{u"id"_s, qlonglong(1)}, {u"name"_s, u"a"_s}}),
                                            map({{u"id"_s, qlonglong(2)}, {u"name"_s, QByteArray("\xff")}})}));

    // Records of one shape repeat their keys (read through a remembered
    // shape); shapes that change, keys in another order, records at
    // several depths. (Records with integer keys: "sequence and names".)
    QTest::addRow("rows of one shape")
            << u"{{b = 1, a = 'x', c = true}, {b = 2, a = 'y', c = false}, {b = 3, a = 'z', c = true}}"_s
            << QVariant(list({map({{u"a"_s, u"x"_s}, {u"b"_s, qlonglong(1)}, {u"c"_s, true}}),
                              map({{u"a"_s, u"y"_s}, {u"b"_s, qlonglong(2)}, {u"c"_s, false}}),
                              map({{u"a"_s, u"z"_s}, {u"b"_s, qlonglong(3)}, {u"c"_s, true}})}));
    QTest::addRow("rows of changing shapes")
            << u"{{a = 1, b = 2}, {a = 3}, {a = 4, b = 5}, {b = 6, c = 7}, {a = 8, b = 9}, {a = 10, b = 11}}"_s
            << QVariant(list({map({{u"a"_s, qlonglong(1)}, {u"b"_s, qlonglong(2)}}),
                              map({{u"a"_s, qlonglong(3)}}),
                              map({{u"a"_s, qlonglong(4)}, {u"b"_s, qlonglong(5)}}),
                              map({{u"b"_s, qlonglong(6)}, {u"c"_s, qlonglong(7)}}),
                              map({{u"a"_s, qlonglong(8)}, {u"b"_s, qlonglong(9)}}),
                              map({{u"a"_s, qlonglong(10)}, {u"b"_s, qlonglong(11)}})}));
    QTest::addRow("same keys made in other orders")
            << u"(function() local r = {} for i = 1, 4 do local t = {} "
               "if i % 2 == 0 then t.z = i t.y = -i t.x = 0 else t.x = 0 t.y = -i t.z = i end "
               "r[i] = t end return r end)()"_s
            << QVariant(list({map({{u"x"_s, qlonglong(0)}, {u"y"_s, qlonglong(-1)}, {u"z"_s, qlonglong(1)}}),
                              map({{u"x"_s, qlonglong(0)}, {u"y"_s, qlonglong(-2)}, {u"z"_s, qlonglong(2)}}),
                              map({{u"x"_s, qlonglong(0)}, {u"y"_s, qlonglong(-3)}, {u"z"_s, qlonglong(3)}}),
                              map({{u"x"_s, qlonglong(0)}, {u"y"_s, qlonglong(-4)}, {u"z"_s, qlonglong(4)}})}));
    QTest::addRow("nested records of one shape")
            << u"{{id = 1, pos = {x = 1, y = 2}}, {id = 2, pos = {x = 3, y = 4}}, {id = 3, pos = {x = 5}}}"_s
            << QVariant(list({map({{u"id"_s, qlonglong(1)}, {u"pos"_s, map({{u"x"_s, qlonglong(1)}, {u"y"_s, qlonglong(2)}})}}),
                              map({{u"id"_s, qlonglong(2)}, {u"pos"_s, map({{u"x"_s, qlonglong(3)}, {u"y"_s, qlonglong(4)}})}}),
                              map({{u"id"_s, qlonglong(3)}, {u"pos"_s, map({{u"x"_s, qlonglong(5)}})}})}));

    // Keys sorted as QString sorts them, for records read through a known
    // shape (values filled in in key order) and for maps past 32 keys
    // (sorted, then built), with integer keys too.
    QTest::addRow("records with awkward keys") << keyedTables(awkwardKeys(), 3) << keyedMaps(awkwardKeys(), 3);
    {
        QStringList many = awkwardKeys();
        for (int i = 1; i <= 40; ++i)
            many << u"key%1"_s.arg(i) << u"%1"_s.arg(i * 7);
        QTest::addRow("maps of 101 keys") << keyedTables(many, 2) << keyedMaps(many, 2);
        QStringList wide; // units whose high and low bytes both vary
        for (int i = 0; i < 300; ++i)
            wide << QString(QChar(char16_t(0x4E00 + (i * 37) % 500))) + QChar(char16_t(0x100 + (i * 11) % 97))
                            + QString::number(i % 7);
        wide.removeDuplicates();
        QTest::addRow("map of CJK keys") << keyedTables(wide, 1) << keyedMaps(wide, 1);
        QVariantMap mixed = keyedMaps(many, 1).toList().at(0).toMap();
        mixed.insert(u"1000"_s, u"x"_s);
        mixed.insert(u"-3"_s, u"y"_s);
        QTest::addRow("101 keys and integer keys")
                << u"(function() local t = %1[1] t[1000] = 'x' t[-3] = 'y' return t end)()"_s.arg(keyedTables(many, 1))
                << QVariant(mixed);
    }
    {
        // Records of 40 shapes, each twice, interleaved with records of
        // one shape: more shapes than the reader remembers.
        QString lua = u"(function() local r = {} for i = 1, 40 do for n = 1, 2 do "
                      "local t = {common = i} t['k' .. i] = n r[#r + 1] = t r[#r + 1] = {x = i, y = n} end end "
                      "return r end)()"_s;
        QVariantList expected;
        for (int i = 1; i <= 40; ++i) {
            for (int n = 1; n <= 2; ++n) {
                expected << map({{u"common"_s, qlonglong(i)}, {u"k%1"_s.arg(i), qlonglong(n)}});
                expected << map({{u"x"_s, qlonglong(i)}, {u"y"_s, qlonglong(n)}});
            }
        }
        QTest::addRow("records of many shapes") << lua << QVariant(expected);
    }
    {
        // Keys the reader found in its cache, then lost from it to the many
        // string values read after them (300 a record), in records of a new
        // shape each (their key texts are needed); values that are keys'
        // strings too, and values seen twice.
        QString lua = u"(function() local r = {} for i = 1, 40 do "
                      "local pad = {} for j = 1, 300 do pad[j] = 's' .. i .. '_' .. j end "
                      "local t = {alpha = 'v' .. i, beta = 'alpha', gamma = 'v' .. i, pad = pad} "
                      "t['k' .. i] = i r[i] = t end return r end)()"_s;
        QVariantList expected;
        for (int i = 1; i <= 40; ++i) {
            QVariantList pad;
            for (int j = 1; j <= 300; ++j)
                pad << u"s%1_%2"_s.arg(i).arg(j);
            expected << map({{u"alpha"_s, u"v%1"_s.arg(i)}, {u"beta"_s, u"alpha"_s}, {u"gamma"_s, u"v%1"_s.arg(i)},
                             {u"pad"_s, pad}, {u"k%1"_s.arg(i), qlonglong(i)}});
        }
        QTest::addRow("keys pushed out of the reader's cache") << lua << QVariant(expected);
    }
    {
        // Tables of tables, each reached twice (converted once, remembered).
        QString lua = u"(function() local r = {} for i = 1, 50 do local s = {{i}, {n = i}} r[#r + 1] = s "
                      "r[#r + 1] = s end return r end)()"_s;
        QVariantList expected;
        for (int i = 1; i <= 50; ++i) {
            const QVariant s = list({list({qlonglong(i)}), map({{u"n"_s, qlonglong(i)}})});
            expected << s << s;
        }
        QTest::addRow("shared tables, many") << lua << QVariant(expected);
    }

    // Tables are data: metatables are not consulted.
    QTest::addRow("__index ignored") << u"setmetatable({}, {__index = function() return 1 end})"_s
                                     << QVariant(QVariantList());
    QTest::addRow("__pairs ignored")
            << u"setmetatable({a = 1}, {__pairs = function() return function() end end})"_s
            << QVariant(map({{u"a"_s, qlonglong(1)}}));
    QTest::addRow("__len ignored") << u"setmetatable({1, 2}, {__len = function() return 5 end})"_s
                                   << QVariant(list({qlonglong(1), qlonglong(2)}));
    QTest::addRow("__tostring and __name ignored")
            << u"setmetatable({x = 1}, {__tostring = function() return 'T' end, __name = 'Thing'})"_s
            << QVariant(map({{u"x"_s, qlonglong(1)}}));
}

void tst_Value::luaToVariant()
{
    QFETCH(QString, expression);
    QFETCH(QVariant, expected);
    const QVariant actual = m_isle->eval("return "_L1 + expression);
    QVERIFY_SAME(actual, expected);
}

void tst_Value::nanAndInfinity()
{
    const QVariant nan = m_isle->eval(u"return 0/0"_s);
    QCOMPARE(nan.typeId(), QMetaType::Double);
    QVERIFY(std::isnan(nan.toDouble()));
    QCOMPARE(m_isle->eval(u"return -math.huge"_s).toDouble(), -std::numeric_limits<double>::infinity());

    // And back: Lua sees a float NaN and infinities.
    const double qnan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    QCOMPARE(m_isle->call(u"dump"_s, {qnan}).toString(), u"fnan"_s);
    QCOMPARE(m_isle->call(u"kind"_s, {qnan}).toString(), u"float"_s);
    QCOMPARE(m_isle->call(u"dump"_s, {inf}).toString(), u"finf"_s);
    QCOMPARE(m_isle->call(u"dump"_s, {-inf}).toString(), u"f-inf"_s);
    QVERIFY(std::isnan(m_isle->call(u"echo"_s, {qnan}).toDouble()));
    QVERIFY(std::isnan(m_isle->call(u"echo"_s, {v(std::numeric_limits<float>::quiet_NaN())}).toDouble()));
}

void tst_Value::hostFunctionReceives_data()
{
    luaToVariant_data();
}

// A registered function gets the same QVariant as eval would.
void tst_Value::hostFunctionReceives()
{
    QFETCH(QString, expression);
    QFETCH(QVariant, expected);
    m_captured.clear();
    QCOMPARE(m_isle->eval("return host.capture(1, "_L1 + expression + ", 'last')"_L1), QVariant(true));
    QVERIFY_SAME(QVariant(m_captured), QVariant(list({qlonglong(1), expected, u"last"_s})));
}

void tst_Value::execRead_data()
{
    luaToVariant_data();
}

// QIsleValue::read in an exec closure: same result, stack untouched.
void tst_Value::execRead()
{
    QFETCH(QString, expression);
    QFETCH(QVariant, expected);
    const QByteArray chunk = ("return "_L1 + expression).toUtf8();
    const QVariant actual = m_isle->exec([&](lua_State *L) {
        const int top = lua_gettop(L);
        if (luaL_loadstring(L, chunk.constData()) != LUA_OK)
            lua_error(L);
        lua_call(L, 0, 1);
        lua_pushboolean(L, 1); // read a slot below the top, by a negative index
        const QVariant value = QIsleValue::read(L, -2, u"slot"_s);
        if (lua_gettop(L) != top + 2)
            throw std::runtime_error("read changed the stack");
        lua_settop(L, top);
        return value;
    });
    QVERIFY_SAME(actual, expected);
}

// ---------------------------------------------------------------------------
// QVariant -> Lua

void tst_Value::variantToLua_data()
{
    QTest::addColumn<QVariant>("value");
    QTest::addColumn<QString>("lua");     // dump() of what Lua got
    QTest::addColumn<QVariant>("back");   // what echo returns

    const QVariant invalid;
    QTest::addRow("invalid") << invalid << u"nil"_s << invalid;
    QTest::addRow("nullptr") << v(nullptr) << u"nil"_s << invalid;
    QTest::addRow("null QString is text") << QVariant(QString()) << s(QByteArray()) << QVariant(u""_s);
    QTest::addRow("true") << QVariant(true) << u"true"_s << QVariant(true);
    QTest::addRow("false") << QVariant(false) << u"false"_s << QVariant(false);

    // Every integer type is a Lua integer.
    QTest::addRow("int") << v(int(-7)) << u"i-7"_s << v(qlonglong(-7));
    QTest::addRow("uint") << v(uint(4000000000u)) << u"i4000000000"_s << v(qlonglong(4000000000ll));
    QTest::addRow("short") << v(short(-300)) << u"i-300"_s << v(qlonglong(-300));
    QTest::addRow("ushort") << v(ushort(65535)) << u"i65535"_s << v(qlonglong(65535));
    QTest::addRow("long") << v(long(-123456789)) << u"i-123456789"_s << v(qlonglong(-123456789));
    QTest::addRow("ulong") << v(ulong(123456789)) << u"i123456789"_s << v(qlonglong(123456789));
    QTest::addRow("qlonglong min") << v(std::numeric_limits<qlonglong>::min()) << u"i-9223372036854775808"_s
                                   << v(std::numeric_limits<qlonglong>::min());
    QTest::addRow("qlonglong max") << v(std::numeric_limits<qlonglong>::max()) << u"i9223372036854775807"_s
                                   << v(std::numeric_limits<qlonglong>::max());
    QTest::addRow("qulonglong fits") << v(qulonglong(std::numeric_limits<qlonglong>::max()))
                                     << u"i9223372036854775807"_s << v(std::numeric_limits<qlonglong>::max());
    QTest::addRow("char") << v(char('A')) << u"i65"_s << v(qlonglong(65));
    QTest::addRow("signed char") << v((signed char)(-5)) << u"i-5"_s << v(qlonglong(-5));
    QTest::addRow("unsigned char") << v((unsigned char)(200)) << u"i200"_s << v(qlonglong(200));
    QTest::addRow("char16_t") << v(char16_t(0x20AC)) << u"i8364"_s << v(qlonglong(0x20AC));
    QTest::addRow("char32_t") << v(char32_t(0x1F600)) << u"i128512"_s << v(qlonglong(0x1F600));

    // Floating point stays float, even when integral.
    QTest::addRow("double") << QVariant(2.5) << u"f2.5"_s << QVariant(2.5);
    QTest::addRow("integral double") << QVariant(2.0) << u"f2"_s << QVariant(2.0);
    QTest::addRow("-0.0") << QVariant(-0.0) << u"f-0"_s << QVariant(-0.0);
    QTest::addRow("float") << v(1.5f) << u"f1.5"_s << QVariant(1.5);
    QTest::addRow("qfloat16") << v(qfloat16(0.25f)) << u"f0.25"_s << QVariant(0.25);
    QTest::addRow("inf") << QVariant(std::numeric_limits<double>::infinity()) << u"finf"_s
                         << QVariant(std::numeric_limits<double>::infinity());

    // Text is UTF-8; bytes are bytes.
    QTest::addRow("QString") << QVariant(u"hello"_s) << s(QByteArray("hello")) << QVariant(u"hello"_s);
    QTest::addRow("QString utf8") << QVariant(QString::fromUtf8("ü€😀")) << s(QByteArray("ü€😀"))
                                  << QVariant(QString::fromUtf8("ü€😀"));
    QTest::addRow("QString NUL") << QVariant(QString::fromUtf16(u"a\0b", 3)) << s(QByteArray("a\0b", 3))
                                 << QVariant(QString::fromUtf16(u"a\0b", 3));
    QTest::addRow("QString BOM") << QVariant(QString(QChar(0xFEFF))) << s(QByteArray("\xEF\xBB\xBF"))
                                 << QVariant(QString(QChar(0xFEFF)));
    const QString longText = QString::fromUtf8("ä😀").repeated(300); // past the short-string path
    QTest::addRow("long QString") << QVariant(longText) << s(longText.toUtf8()) << QVariant(longText);
    QTest::addRow("QChar") << QVariant(QChar(0xE9)) << s(QByteArray("\xC3\xA9")) << QVariant(QString(QChar(0xE9)));
    QTest::addRow("QByteArray binary") << QVariant(QByteArray("\xff\0z", 3)) << s(QByteArray("\xff\0z", 3))
                                       << QVariant(QByteArray("\xff\0z", 3));
    QTest::addRow("QByteArray utf8 comes back as QString")
            << QVariant(QByteArray("abc")) << s(QByteArray("abc")) << QVariant(u"abc"_s);
    QTest::addRow("empty QByteArray") << QVariant(QByteArray()) << s(QByteArray()) << QVariant(u""_s);

    // Containers.
    QTest::addRow("QStringList") << QVariant(QStringList{u"a"_s, u"b"_s}) << u"{#1=%1,#2=%2}"_s.arg(s("a"_ba), s("b"_ba))
                                 << QVariant(list({u"a"_s, u"b"_s}));
    QTest::addRow("QVariantList") << QVariant(list({1, u"x"_s, list({true})}))
                                  << u"{#1=i1,#2=%1,#3={#1=true}}"_s.arg(s("x"_ba))
                                  << QVariant(list({qlonglong(1), u"x"_s, list({true})}));
    QTest::addRow("QVariantList with nulls") << QVariant(list({1, QVariant(), 3}))
                                             << u"{#1=i1,#3=i3}"_s
                                             << QVariant(map({{u"1"_s, qlonglong(1)}, {u"3"_s, qlonglong(3)}}));
    QTest::addRow("empty QVariantList") << QVariant(QVariantList()) << u"{}"_s << QVariant(QVariantList());
    QTest::addRow("QVariantMap") << QVariant(map({{u"a"_s, 1}, {u"b"_s, map({{u"c"_s, 2.5}})}}))
                                 << u"{a=i1,b={c=f2.5}}"_s
                                 << QVariant(map({{u"a"_s, qlonglong(1)}, {u"b"_s, map({{u"c"_s, 2.5}})}}));
    QTest::addRow("QVariantMap numeric keys stay strings")
            << QVariant(map({{u"1"_s, u"x"_s}})) << u"{1=%1}"_s.arg(s("x"_ba)) << QVariant(map({{u"1"_s, u"x"_s}}));
    QTest::addRow("empty QVariantMap is an empty table")
            << QVariant(QVariantMap()) << u"{}"_s << QVariant(QVariantList());
    // Map keys shared between records are written through the key cache:
    // static and shared keys, keys with one data pointer and two lengths,
    // keys made one by one.
    static const char16_t keyText[] = u"abc";
    const QString a = QString::fromRawData(reinterpret_cast<const QChar *>(keyText), 1);
    const QString ab = QString::fromRawData(reinterpret_cast<const QChar *>(keyText), 2);
    QTest::addRow("records with shared keys")
            << QVariant(list({map({{u"id"_s, 1}, {a, u"x"_s}}), map({{u"id"_s, 2}, {ab, u"y"_s}}),
                              map({{u"id"_s, 3}, {a, u"z"_s}, {ab, true}})}))
            << u"{#1={a=%1,id=i1},#2={ab=%2,id=i2},#3={a=%3,ab=true,id=i3}}"_s.arg(s("x"_ba), s("y"_ba), s("z"_ba))
            << QVariant(list({map({{u"a"_s, u"x"_s}, {u"id"_s, qlonglong(1)}}),
                              map({{u"ab"_s, u"y"_s}, {u"id"_s, qlonglong(2)}}),
                              map({{u"a"_s, u"z"_s}, {u"ab"_s, true}, {u"id"_s, qlonglong(3)}})}));
    QTest::addRow("records with keys made one by one")
            << QVariant(list({map({{QString::number(10), 1}}), map({{QString::number(10), 2}, {QString::number(11), 3}})}))
            << u"{#1={10=i1},#2={10=i2,11=i3}}"_s
            << QVariant(list({map({{u"10"_s, qlonglong(1)}}), map({{u"10"_s, qlonglong(2)}, {u"11"_s, qlonglong(3)}})}));
    QTest::addRow("QVariantHash") << QVariant(QVariantHash{{u"k"_s, 1}, {u"l"_s, u"m"_s}})
                                  << u"{k=i1,l=%1}"_s.arg(s("m"_ba))
                                  << QVariant(map({{u"k"_s, qlonglong(1)}, {u"l"_s, u"m"_s}}));

    // JSON: integral numbers are integers (as QJsonValue::toVariant()).
    QTest::addRow("QJsonValue null") << QVariant(QJsonValue(QJsonValue::Null)) << u"nil"_s << invalid;
    QTest::addRow("QJsonValue undefined") << QVariant(QJsonValue(QJsonValue::Undefined)) << u"nil"_s << invalid;
    QTest::addRow("QJsonValue bool") << QVariant(QJsonValue(true)) << u"true"_s << QVariant(true);
    QTest::addRow("QJsonValue integer") << QVariant(QJsonValue(qint64(1) << 60)) << u"i1152921504606846976"_s
                                        << v(qlonglong(1) << 60);
    QTest::addRow("QJsonValue 3.0") << QVariant(QJsonValue(3.0)) << u"i3"_s << v(qlonglong(3));
    QTest::addRow("QJsonValue 2.5") << QVariant(QJsonValue(2.5)) << u"f2.5"_s << QVariant(2.5);
    QTest::addRow("QJsonValue string") << QVariant(QJsonValue(u"j"_s)) << s("j"_ba) << QVariant(u"j"_s);
    const QJsonArray jsonArray{1, u"two"_s, QJsonValue::Null, QJsonArray{true}};
    QTest::addRow("QJsonArray") << QVariant(jsonArray) << u"{#1=i1,#2=%1,#4={#1=true}}"_s.arg(s("two"_ba))
                                << QVariant(map({{u"1"_s, qlonglong(1)}, {u"2"_s, u"two"_s},
                                                 {u"4"_s, list({true})}}));
    const QJsonObject jsonObject{{u"a"_s, 1.5}, {u"b"_s, QJsonObject{{u"c"_s, u"d"_s}}}, {u"e"_s, QJsonArray{}}};
    QTest::addRow("QJsonObject") << QVariant(jsonObject) << u"{a=f1.5,b={c=%1},e={}}"_s.arg(s("d"_ba))
                                 << QVariant(map({{u"a"_s, 1.5}, {u"b"_s, map({{u"c"_s, u"d"_s}})},
                                                  {u"e"_s, QVariantList()}}));
    QTest::addRow("QJsonValue array") << QVariant(QJsonValue(QJsonArray{1, 2})) << u"{#1=i1,#2=i2}"_s
                                      << QVariant(list({qlonglong(1), qlonglong(2)}));
    QTest::addRow("QJsonValue object") << QVariant(QJsonValue(QJsonObject{{u"x"_s, false}})) << u"{x=false}"_s
                                       << QVariant(map({{u"x"_s, false}}));
    QTest::addRow("QJsonDocument object") << QVariant(QJsonDocument(QJsonObject{{u"n"_s, 1}})) << u"{n=i1}"_s
                                          << QVariant(map({{u"n"_s, qlonglong(1)}}));
    QTest::addRow("QJsonDocument array") << QVariant(QJsonDocument(QJsonArray{u"q"_s})) << u"{#1=%1}"_s.arg(s("q"_ba))
                                         << QVariant(list({u"q"_s}));
    QTest::addRow("empty QJsonDocument") << QVariant(QJsonDocument()) << u"nil"_s << invalid;

    // Other containers Qt can iterate.
    QTest::addRow("QList<int>") << v(QList<int>{4, 5}) << u"{#1=i4,#2=i5}"_s
                                << QVariant(list({qlonglong(4), qlonglong(5)}));
    QTest::addRow("std::vector<double>") << v(std::vector<double>{0.5}) << u"{#1=f0.5}"_s << QVariant(list({0.5}));
    QTest::addRow("QByteArrayList") << v(QByteArrayList{"\xff", "b"}) << u"{#1=%1,#2=%2}"_s.arg(s("\xff"_ba), s("b"_ba))
                                    << QVariant(list({QByteArray("\xff"), u"b"_s}));
    QTest::addRow("QMap<QString,int>") << v(QMap<QString, int>{{u"a"_s, 1}}) << u"{a=i1}"_s
                                       << QVariant(map({{u"a"_s, qlonglong(1)}}));
    QTest::addRow("QMap<int,QString> has integer keys")
            << v(QMap<int, QString>{{1, u"x"_s}, {2, u"y"_s}}) << u"{#1=%1,#2=%2}"_s.arg(s("x"_ba), s("y"_ba))
            << QVariant(list({u"x"_s, u"y"_s}));
    QTest::addRow("QHash<qlonglong,bool>") << v(QHash<qlonglong, bool>{{-1, true}}) << u"{#-1=true}"_s
                                           << QVariant(map({{u"-1"_s, true}}));
}

void tst_Value::variantToLua()
{
    QFETCH(QVariant, value);
    QFETCH(QString, lua);
    QCOMPARE(m_isle->call(u"dump"_s, {value}).toString(), lua);
}

void tst_Value::execPush_data()
{
    variantToLua_data();
}

// QIsleValue::push in an exec closure: exactly one value more on the stack.
void tst_Value::execPush()
{
    QFETCH(QVariant, value);
    QFETCH(QString, lua);
    const QVariant dumped = m_isle->exec([&](lua_State *L) {
        const int top = lua_gettop(L);
        lua_getglobal(L, "dump");
        QIsleValue::push(L, value);
        if (lua_gettop(L) != top + 2)
            throw std::runtime_error("push did not push one value");
        lua_call(L, 1, 1);
        const QVariant text = QIsleValue::read(L, -1);
        lua_settop(L, top);
        return text;
    });
    QCOMPARE(dumped.toString(), lua);
}

void tst_Value::hostFunctionResults_data()
{
    variantToLua_data();
}

// What a registered function returns reaches Lua the same way.
void tst_Value::hostFunctionResults()
{
    QFETCH(QVariant, value);
    QFETCH(QString, lua);
    m_isle->registerFunction(u"host.give"_s, [value](const QVariantList &) { return value; });
    QCOMPARE(m_isle->eval(u"return dump(host.give())"_s).toString(), lua);
}

void tst_Value::emitValues()
{
    QFuture<QVariant> f = m_isle->spawnEval(
            u"isle.emit({1, 'two', {x = 3.0}}) isle.emit('\\xff') isle.emit(nil) return {}"_s);
    QVERIFY_SAME(QIsle::waitFor(f), QVariant(QVariantList()));
    QTRY_COMPARE_WITH_TIMEOUT(f.resultCount(), 4, 5000);
    QVERIFY_SAME(f.resultAt(1), QVariant(list({qlonglong(1), u"two"_s, map({{u"x"_s, 3.0}})})));
    QVERIFY_SAME(f.resultAt(2), QVariant(QByteArray("\xff")));
    QVERIFY_SAME(f.resultAt(3), QVariant());

    try {
        m_isle->eval(u"isle.emit({f = print})"_s);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QCOMPARE(e.message(), u"emit.f: cannot convert a function"_s);
    }
}

// ---------------------------------------------------------------------------
// Round trips

void tst_Value::roundTripThroughCall_data()
{
    variantToLua_data();
}

void tst_Value::roundTripThroughCall()
{
    QFETCH(QVariant, value);
    QFETCH(QVariant, back);
    QVERIFY_SAME(m_isle->call(u"echo"_s, {value}), back);
    // A second trip changes nothing: what came back is a fixed point.
    QVERIFY_SAME(m_isle->call(u"echo"_s, {back}), back);
    // The same through a host function called from Lua.
    QVERIFY_SAME(m_isle->call(u"host.echo"_s, {value}), back);
}

void tst_Value::roundTripThroughLua_data()
{
    luaToVariant_data();
}

// Lua -> QVariant -> Lua -> QVariant is stable, and Lua gets back the same
// shape (maps' integer keys become strings; nothing else changes).
void tst_Value::roundTripThroughLua()
{
    QFETCH(QString, expression);
    QFETCH(QVariant, expected);
    const QVariant first = m_isle->eval("return "_L1 + expression);
    QVERIFY_SAME(m_isle->call(u"echo"_s, {first}), expected);
    QVERIFY_SAME(m_isle->eval("return host.echo("_L1 + expression + u')'), expected);
    if (expected.typeId() != QMetaType::QVariantMap) {
        const QVariant same = m_isle->eval("local v = "_L1 + expression + " return dump(host.echo(v)) == dump(v)"_L1);
        QCOMPARE(same, QVariant(true));
    }
}

// ---------------------------------------------------------------------------
// Errors

void tst_Value::readErrors_data()
{
    QTest::addColumn<QString>("expression");
    QTest::addColumn<QString>("message");

    QTest::addRow("function") << u"print"_s << u"result: cannot convert a function"_s;
    QTest::addRow("lua function") << u"function() end"_s << u"result: cannot convert a function"_s;
    QTest::addRow("thread") << u"coroutine.create(print)"_s << u"result: cannot convert a thread"_s;
    QTest::addRow("userdata, not its __name") << u"io.stdout"_s << u"result: cannot convert a userdata"_s;
    QTest::addRow("in a list") << u"{items = {1, 2, print}}"_s << u"result.items[3]: cannot convert a function"_s;
    QTest::addRow("deep") << u"{a = {b = {{}, {c = coroutine.create(print)}}}}"_s
                          << u"result.a.b[2].c: cannot convert a thread"_s;
    QTest::addRow("odd name") << u"{['a b'] = {print}}"_s << u"result[\"a b\"][1]: cannot convert a function"_s;
    QTest::addRow("quoted name") << u"{['say \"hi\"'] = print}"_s
                                 << u"result[\"say \\\"hi\\\"\"]: cannot convert a function"_s;
    QTest::addRow("integer key in a map") << u"{[10] = print, x = 1}"_s << u"result[10]: cannot convert a function"_s;
    QTest::addRow("string key that looks numeric") << u"{['10'] = print}"_s
                                                   << u"result[\"10\"]: cannot convert a function"_s;
    QTest::addRow("boolean key") << u"{[true] = 1}"_s << u"result: a table key is a boolean"_s;
    QTest::addRow("float key") << u"{[1.5] = 1}"_s << u"result: a table key is a non-integer number (1.5)"_s;
    QTest::addRow("table key") << u"{a = {[{}] = 1}}"_s << u"result.a: a table key is a table"_s;
    QTest::addRow("function key") << u"{list = {1, {[print] = 1}}}"_s << u"result.list[2]: a table key is a function"_s;
    QTest::addRow("binary key") << u"{x = {['\\xff\\0'] = 1}}"_s
                                << u"result.x: a table key is not UTF-8 text (\"\\xff\\x00\")"_s;
    QTest::addRow("colliding keys") << u"{[1] = 'a', ['1'] = 'b'}"_s
                                    << u"result: the keys 1 and \"1\" would both be \"1\""_s;
    QTest::addRow("colliding keys among 40")
            << u"(function() local t = {[7] = 'a', ['7'] = 'b'} for i = 1, 40 do t['k' .. i] = i end return t end)()"_s
            << u"result: the keys 7 and \"7\" would both be \"7\""_s;
    QTest::addRow("binary key among 40")
            << u"(function() local t = {} for i = 1, 40 do t['k' .. i] = i end t['\\xff'] = 1 return {t} end)()"_s
            << u"result[1]: a table key is not UTF-8 text (\"\\xff\")"_s;
    QTest::addRow("function among 40")
            << u"(function() local t = {} for i = 1, 40 do t['k' .. i] = i end t.f = print return {t} end)()"_s
            << u"result[1].f: cannot convert a function"_s;
    QTest::addRow("self cycle") << u"(function() local t = {} t.self = t return t end)()"_s
                                << u"result.self: a cycle back to result"_s;
    QTest::addRow("cycle") << u"(function() local a = {b = {}} a.b.c = {back = a.b} return a end)()"_s
                           << u"result.b.c.back: a cycle back to result.b"_s;
    QTest::addRow("cycle in a list") << u"(function() local t = {1, 2} t[3] = t return {t} end)()"_s
                                     << u"result[1][3]: a cycle back to result[1]"_s;
    QTest::addRow("129 levels") << u"nest(129)"_s
                                << "result"_L1 + repeated(u"[1]"_s, 128) + ": tables nested deeper than 128"_L1;
    QTest::addRow("metatable __name not used")
            << u"{setmetatable({}, {__name = 'Thing', __tostring = function() return 'T' end}), print}"_s
            << u"result[2]: cannot convert a function"_s;
}

void tst_Value::readErrors()
{
    QFETCH(QString, expression);
    QFETCH(QString, message);
    try {
        m_isle->eval("return "_L1 + expression);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QCOMPARE(e.message(), message);
    }
    // The same through a host function: args[n] instead of result.
    try {
        m_isle->eval("return host.echo("_L1 + expression + u')');
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QString expected = message;
        expected.replace(u"result"_s, u"args[1]"_s);
        QCOMPARE(e.message(), expected);
    }
    // pcall in the script sees the same message.
    QCOMPARE(m_isle->eval("return select(2, pcall(host.echo, "_L1 + expression + "))"_L1).toString(),
             QString(message).replace(u"result"_s, u"args[1]"_s));
    // The VM keeps serving.
    QCOMPARE(m_isle->eval(u"return 40 + 2"_s), QVariant(qlonglong(42)));
}

void tst_Value::pushErrors_data()
{
    QTest::addColumn<QVariantList>("args");
    QTest::addColumn<QString>("message");

    const QVariant dateTime = QDateTime(QDate(2024, 1, 1), QTime(0, 0));
    QTest::addRow("QDateTime") << QVariantList{dateTime} << u"args[1]: cannot convert a QVariant of type QDateTime"_s;
    QTest::addRow("second argument's field")
            << QVariantList{1, map({{u"name"_s, dateTime}})}
            << u"args[2].name: cannot convert a QVariant of type QDateTime"_s;
    QTest::addRow("in a list") << QVariantList{map({{u"items"_s, list({1, 2, QUrl(u"x"_s)})}})}
                               << u"args[1].items[3]: cannot convert a QVariant of type QUrl"_s;
    QTest::addRow("odd key") << QVariantList{map({{u"a-b"_s, QVariant(QUuid())}})}
                             << u"args[1][\"a-b\"]: cannot convert a QVariant of type QUuid"_s;
    QTest::addRow("in a hash") << QVariantList{QVariantHash{{u"h"_s, QVariant(QSize(1, 2))}}}
                               << u"args[1].h: cannot convert a QVariant of type QSize"_s;
    // (A QObject pointer is a Lua object now: tst_objects.)
    QTest::addRow("void pointer")
            << QVariantList{v(static_cast<void *>(nullptr))} << u"args[1]: cannot convert a QVariant of type void*"_s;
    QTest::addRow("quint64 max") << QVariantList{v(std::numeric_limits<quint64>::max())}
                                 << u"args[1]: the unsigned integer 18446744073709551615 does not fit a Lua integer"_s;
    QTest::addRow("quint64 2^63") << QVariantList{v(quint64(1) << 63)}
                                  << u"args[1]: the unsigned integer 9223372036854775808 does not fit a Lua integer"_s;
    QTest::addRow("ulong past lua_Integer") << QVariantList{0, v(ulong(std::numeric_limits<ulong>::max()))}
                                            << u"args[2]: the unsigned integer 18446744073709551615 does not fit a Lua integer"_s;
    QTest::addRow("unpaired surrogate") << QVariantList{QString(QChar(0xD800))}
                                        << u"args[1]: a string with an unpaired UTF-16 surrogate is not text"_s;
    QTest::addRow("unpaired low surrogate in a long string")
            << QVariantList{QVariant(list({QString(1000, u'a') + QChar(0xDC00)}))}
            << u"args[1][1]: a string with an unpaired UTF-16 surrogate is not text"_s;
    QTest::addRow("surrogate in a key") << QVariantList{map({{QString(QChar(0xDBFF)), 1}})}
                                        << u"args[1][\"\\u{DBFF}\"]: a string with an unpaired UTF-16 surrogate is not text"_s;
    QTest::addRow("map key type") << QVariantList{v(QMap<QDateTime, int>{{QDateTime(QDate(2024, 1, 1), QTime()), 1}})}
                                  << u"args[1]: a map key of type QDateTime is neither text nor an integer"_s;
    QTest::addRow("129 levels") << QVariantList{nestedList(129)}
                                << "args[1]"_L1 + repeated(u"[1]"_s, 128) + ": values nested deeper than 128"_L1;
    QTest::addRow("129 levels of JSON")
            << QVariantList{[] {
                   QJsonArray a{1};
                   for (int i = 1; i < 129; ++i) {
                       QJsonArray outer; // not QJsonArray{a}: that may be a copy
                       outer.append(a);
                       a = outer;
                   }
                   return QVariant(a);
               }()}
            << "args[1]"_L1 + repeated(u"[1]"_s, 128) + ": values nested deeper than 128"_L1;
}

void tst_Value::pushErrors()
{
    QFETCH(QVariantList, args);
    QFETCH(QString, message);
    try {
        m_isle->call(u"mark"_s, args);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QCOMPARE(e.message(), message);
    }
    // A host function's result: the path starts at "result".
    const QVariant bad = args.constLast();
    m_isle->registerFunction(u"host.bad"_s, [bad](const QVariantList &) { return bad; });
    try {
        m_isle->eval(u"return host.bad()"_s);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QString expected = message;
        expected.replace(QRegularExpression(u"^args\\[\\d+\\]"_s), u"result"_s);
        QCOMPARE(e.message(), expected);
    }
    QCOMPARE(m_isle->eval(u"return 40 + 2"_s), QVariant(qlonglong(42)));
}

// Arguments are all converted before the call: a bad one runs nothing.
void tst_Value::failedArgumentsRunNothing()
{
    const QVariant before = m_isle->eval(u"return ran"_s);
    for (const QVariantList &args : {QVariantList{1, 2, QDateTime::currentDateTime()},
                                     QVariantList{QDateTime::currentDateTime(), 1},
                                     QVariantList{map({{u"ok"_s, 1}, {u"bad"_s, QUrl()}})},
                                     QVariantList{1, nestedList(200)}}) {
        QVERIFY_THROWS_EXCEPTION(QIsleError, m_isle->call(u"mark"_s, args));
        QFuture<QVariant> f = m_isle->spawnCall(u"mark"_s, args);
        QVERIFY_THROWS_EXCEPTION(QIsleError, QIsle::waitFor(f));
    }
    QCOMPARE(m_isle->eval(u"return ran"_s), before);
    QCOMPARE(m_isle->call(u"mark"_s, {1}), QVariant(true));
    QCOMPARE(m_isle->eval(u"return ran"_s), QVariant(before.toLongLong() + 1));
}

void tst_Value::hostFunctionErrors()
{
    // Arguments that do not convert: a Conversion error the script can catch.
    try {
        m_isle->eval(u"return host.echo(1, {2, function() end})"_s);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QCOMPARE(e.message(), u"args[2][2]: cannot convert a function"_s);
    }
    m_isle->registerFunction(u"host.date"_s, [](const QVariantList &) { return QVariant(QDateTime::currentDateTime()); });
    QCOMPARE(m_isle->eval(u"local ok, err = pcall(host.date) return err"_s).toString(),
             u"result: cannot convert a QVariant of type QDateTime"_s);
    QCOMPARE(m_isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
}

// In exec closures the helpers throw and leave the stack as it was.
void tst_Value::execErrorsKeepStack()
{
    const QVariant result = m_isle->exec([](lua_State *L) {
        QStringList seen;
        const int top = lua_gettop(L);
        const auto check = [&](const char *what) {
            if (lua_gettop(L) != top)
                throw std::runtime_error(std::string("unbalanced stack after ") + what);
        };
        luaL_dostring(L, "local t = {ok = {1, 2}, bad = {x = {print}}} t.ok.self = t.ok return t");
        const int t = lua_gettop(L);
        try {
            QIsleValue::read(L, t, u"t"_s);
        } catch (const QIsleError &e) {
            seen << e.message();
        }
        lua_settop(L, top);
        check("read");
        luaL_dostring(L, "return {a = {b = {c = io.stdout}}}");
        try {
            QIsleValue::read(L, -1, u"deep"_s);
        } catch (const QIsleError &e) {
            seen << e.message();
        }
        lua_settop(L, top);
        check("read");
        try {
            QIsleValue::push(L, map({{u"a"_s, list({1, 2, QVariant(QUrl())})}}), u"arg"_s);
        } catch (const QIsleError &e) {
            seen << e.message();
        }
        check("push");
        try {
            QIsleValue::push(L, nestedList(500), u"deep"_s);
        } catch (const QIsleError &e) {
            seen << e.message().left(10);
        }
        check("push");
        return QVariant(seen);
    });
    const QStringList seen = result.toStringList();
    QCOMPARE(seen.size(), 4);
    // lua_next's order decides which of two bad entries is met first.
    QVERIFY2(seen.at(0) == u"t.bad.x[1]: cannot convert a function"_s || seen.at(0) == u"t.ok.self: a cycle back to t.ok"_s,
             qPrintable(seen.at(0)));
    QCOMPARE(seen.at(1), u"deep.a.b.c: cannot convert a userdata"_s);
    QCOMPARE(seen.at(2), u"arg.a[3]: cannot convert a QVariant of type QUrl"_s);
    QCOMPARE(seen.at(3), u"deep[1][1]"_s);
}

void tst_Value::defaultWhere()
{
    const QVariant message = m_isle->exec([](lua_State *L) {
        lua_getglobal(L, "print");
        try {
            QIsleValue::read(L, -1);
        } catch (const QIsleError &e) {
            lua_pop(L, 1);
            return QVariant(e.message());
        }
        return QVariant();
    });
    QCOMPARE(message.toString(), u"value: cannot convert a function"_s);
    // A slot past the top reads as nil does.
    QCOMPARE(m_isle->exec([](lua_State *L) { return QIsleValue::read(L, lua_gettop(L) + 5); }), QVariant());
}

// ---------------------------------------------------------------------------
// Limits

void tst_Value::depthLimitRead()
{
    // Exactly at the limit: 128 levels convert.
    QCOMPARE(depthOf(m_isle->eval(u"return nest(128)"_s)), QIsleValue::MaxDepth);
    QCOMPARE(depthOf(m_isle->eval(u"return host.echo(nest(128))"_s)), 128);
    QCOMPARE(depthOf(m_isle->eval(u"return host.args(nest(127))"_s)), 128);
    QVERIFY_THROWS_EXCEPTION(QIsleError, m_isle->eval(u"return host.args(nest(128))"_s));

    // Far past it: a clean error, no stack overflow.
    for (int n : {129, 1000, 100000}) {
        try {
            m_isle->eval(u"return nest(%1)"_s.arg(n));
            QFAIL("expected a Conversion error");
        } catch (const QIsleError &e) {
            QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
            QVERIFY2(e.message().endsWith(u": tables nested deeper than 128"_s), qPrintable(e.message()));
        }
    }
    QCOMPARE(m_isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
}

void tst_Value::depthLimitPush()
{
    QCOMPARE(m_isle->call(u"dump"_s, {nestedList(2)}).toString(), u"{#1={#1=i1}}"_s);
    const QVariant at = m_isle->call(u"echo"_s, {nestedList(128)});
    QCOMPARE(depthOf(at), 128);
    QCOMPARE(m_isle->call(u"len"_s, {nestedList(128)}), QVariant(qlonglong(1)));
    for (int n : {129, 100000}) {
        try {
            m_isle->call(u"len"_s, {nestedList(n)});
            QFAIL("expected a Conversion error");
        } catch (const QIsleError &e) {
            QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
            QVERIFY2(e.message().endsWith(u": values nested deeper than 128"_s), qPrintable(e.message()));
        }
    }
    // QVariantMap levels count the same.
    QVariant m = map({{u"leaf"_s, 1}});
    for (int i = 1; i < 128; ++i)
        m = map({{u"m"_s, m}});
    QVERIFY(m_isle->call(u"echo"_s, {m}).isValid());
    QVERIFY_THROWS_EXCEPTION(QIsleError, m_isle->call(u"echo"_s, {map({{u"m"_s, m}})}));
}

void tst_Value::sharedTablesRead()
{
    // A table reached twice (not a cycle) is data twice.
    const QVariant twice = m_isle->eval(u"local s = {1, {2}} return {a = s, b = {s}}"_s);
    QVERIFY_SAME(twice, QVariant(map({{u"a"_s, list({qlonglong(1), list({qlonglong(2)})})},
                                      {u"b"_s, list({list({qlonglong(1), list({qlonglong(2)})})})}})));

    // 2^60 paths through 61 tables: converted once each, at once.
    QElapsedTimer timer;
    timer.start();
    const QVariant dag = m_isle->eval(u"local t = {1} for i = 1, 60 do t = {t, t} end return t"_s);
    QVERIFY2(timer.elapsed() < 5000, "a DAG of shared tables must not be walked path by path");
    QCOMPARE(depthOf(dag), 61);

    // Many shared tables, all of them first, then all again (the reader's
    // index of tables seen grows a filter past 512, and past 2^16 the
    // filter no longer tells them apart): each converted once, its two
    // places share the result.
    constexpr int Shared = 30000;
    const QVariantList many = m_isle->eval(u"local r = {} for i = 1, %1 do r[i] = {{i}} end "
                                           "for i = 1, %1 do r[%1 + i] = r[i] end return r"_s.arg(Shared))
                                      .toList();
    QCOMPARE(many.size(), 2 * Shared);
    for (int i = 0; i < Shared; ++i) {
        const QVariantList first = many.at(i).toList(), second = many.at(Shared + i).toList();
        if (first != list({list({qlonglong(i + 1)})}))
            QFAIL(qPrintable(u"shared table %1 read wrong"_s.arg(i + 1)));
        if (first.constData() != second.constData())
            QFAIL(qPrintable(u"shared table %1 converted twice"_s.arg(i + 1)));
    }

    // A shared deep table reached at a depth past the limit is still caught.
    try {
        // d first at level 2 (101 levels deep in all), then again at level 31.
        m_isle->eval(u"local d = nest(100) local t = nest(29) local x = t "
                     "while next(x) do x = x[1] end x[1] = d return {d, t}"_s);
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QVERIFY2(e.message().endsWith(u": tables nested deeper than 128"_s), qPrintable(e.message()));
    }
    m_isle->eval(u"collectgarbage()"_s); // keep closing the VM quick
}

void tst_Value::sharedContainersPush()
{
    // Copies of one implicitly shared container: each becomes its own table.
    const QVariant row = map({{u"id"_s, 1}, {u"tags"_s, list({u"a"_s})}});
    const QVariantList rows{row, row, row};
    QCOMPARE(m_isle->call(u"dump"_s, {QVariant(rows)}).toString(),
             u"{#1={id=i1,tags={#1=%1}},#2={id=i1,tags={#1=%1}},#3={id=i1,tags={#1=%1}}}"_s.arg(s("a"_ba)));
    m_isle->registerFunction(u"host.rows"_s, [rows](const QVariantList &) { return QVariant(rows); });
    QCOMPARE(m_isle->eval(u"local r = host.rows() r[1].id = 99 return r[2].id"_s), QVariant(qlonglong(1)));

    // A list that doubles at each of 64 levels would be 2^64 tables: a
    // Conversion error, quickly, not a hang or an out-of-memory death.
    QVariant doubling = list({1});
    for (int i = 0; i < 64; ++i)
        doubling = list({doubling, doubling});
    QElapsedTimer timer;
    timer.start();
    try {
        m_isle->call(u"len"_s, {doubling});
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.kind(), QIsleError::Kind::Conversion);
        QVERIFY2(e.message().contains(u"containers shared within the value would expand to more than"_s),
                 qPrintable(e.message()));
        QVERIFY2(e.message().startsWith(u"args[1][1]"_s), qPrintable(e.message()));
    }
    QVERIFY2(timer.elapsed() < 20000, qPrintable(u"took %1 ms"_s.arg(timer.elapsed())));

    // The same from a Lua DAG: reading shares, writing back refuses to expand.
    QVERIFY_THROWS_EXCEPTION(QIsleError, m_isle->eval(u"local t = {1} for i = 1, 60 do t = {t, t} end "
                                                      "return host.echo(t)"_s));
    // A modest repeat is fine: 2^10 copies of a small shared list.
    QVariant modest = list({1, 2, 3});
    for (int i = 0; i < 10; ++i)
        modest = list({modest, modest});
    QCOMPARE(m_isle->call(u"len"_s, {modest}), QVariant(qlonglong(2)));
    QCOMPARE(m_isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
    m_isle->eval(u"collectgarbage()"_s); // keep closing the VM quick
}

void tst_Value::millionEntries()
{
    constexpr int N = 1000000;
    const QVariant seq = m_isle->eval(u"local t = {} for i = 1, %1 do t[i] = i end return t"_s.arg(N));
    QCOMPARE(seq.typeId(), QMetaType::QVariantList);
    const QVariantList items = seq.toList();
    QCOMPARE(items.size(), N);
    QVERIFY_SAME(items.constFirst(), v(qlonglong(1)));
    QVERIFY_SAME(items.constLast(), v(qlonglong(N)));
    QCOMPARE(m_isle->call(u"len"_s, {seq}), QVariant(qlonglong(N)));

    const QVariant names = m_isle->eval(u"local t = {} for i = 1, %1 do t['k' .. i] = i end return t"_s.arg(N));
    QCOMPARE(names.typeId(), QMetaType::QVariantMap);
    QCOMPARE(names.toMap().size(), N);
    QVERIFY_SAME(names.toMap().value(u"k777"_s), v(qlonglong(777)));
    m_isle->registerFunction(u"host.names"_s, [names](const QVariantList &) { return names; });
    QCOMPARE(m_isle->eval(u"local n = 0 for _ in pairs(host.names()) do n = n + 1 end return n"_s),
             QVariant(qlonglong(N)));

    // A million entries with one bad one at the end: a clean error.
    try {
        m_isle->eval(u"local t = {} for i = 1, %1 do t[i] = i end t[%1] = print return t"_s.arg(N));
        QFAIL("expected a Conversion error");
    } catch (const QIsleError &e) {
        QCOMPARE(e.message(), u"result[%1]: cannot convert a function"_s.arg(N));
    }
    QCOMPARE(m_isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
    m_isle->eval(u"collectgarbage()"_s); // keep closing the VM quick
}

void tst_Value::hundredMegabyteString()
{
    constexpr qsizetype Size = 100 * 1024 * 1024;
    {
        const QVariant text = m_isle->eval(u"return ('x'):rep(%1)"_s.arg(Size));
        QCOMPARE(text.typeId(), QMetaType::QString);
        QCOMPARE(text.toString().size(), Size);
        QCOMPARE(m_isle->call(u"len"_s, {text}), QVariant(qlonglong(Size)));
    }
    {
        // Valid UTF-8 up to the very last byte, which is not: QByteArray.
        const QVariant bytes = m_isle->eval(u"return ('\\u{E9}'):rep(%1) .. '\\xff'"_s.arg(Size / 2));
        QCOMPARE(bytes.typeId(), QMetaType::QByteArray);
        QCOMPARE(bytes.toByteArray().size(), Size + 1);
        QCOMPARE(m_isle->call(u"len"_s, {bytes}), QVariant(qlonglong(Size + 1)));
    }
    {
        const QVariant text = m_isle->eval(u"return ('\\u{E9}'):rep(%1)"_s.arg(Size / 2));
        QCOMPARE(text.typeId(), QMetaType::QString);
        QCOMPARE(text.toString().size(), Size / 2);
    }
    QCOMPARE(m_isle->eval(u"return 1"_s), QVariant(qlonglong(1)));
    m_isle->eval(u"collectgarbage()"_s); // keep closing the VM quick
}

QTEST_GUILESS_MAIN(tst_Value)
#include "tst_value.moc"
