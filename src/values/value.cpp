// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "values/value_p.h"

#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "objects/classinfo_p.h"
#include "objects/objectlib_p.h"
#include "objects/objectref_p.h"

#include <QtCore/QAssociativeIterable>
#include <QtCore/QHash>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QJsonValue>
#include <QtCore/QSequentialIterable>
#include <QtCore/QSet>
#include <QtCore/QVarLengthArray>
#include <QtCore/qfloat16.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

// The hot paths (a list of rows, each a map of a few fields) are kept free of
// work that only an error needs: where a value sits is not built as text while
// converting. Reading keeps, for each level, the stack slot that holds the key
// lua_next is at; writing keeps a pointer to the key or the index. The text of
// the path is made only when a conversion fails.

namespace {

constexpr int MaxDepth = QIsleValue::MaxDepth;

[[noreturn]] void throwConversion(const QString &text)
{
    throw QIsleError(QIsleError::Kind::Conversion, text);
}

// The top `bits` bits of a pointer (plus a small number) scrambled
// (Fibonacci hashing): the low bits of heap addresses repeat (alignment, a
// fixed offset into Lua's string objects) and would crowd a few slots.
inline std::size_t hashSlot(const void *pointer, std::size_t extra, int bits)
{
    const auto x = std::uint64_t(reinterpret_cast<std::uintptr_t>(pointer)) ^ std::uint64_t(extra);
    return std::size_t((x * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

// Pointers seen, each with its number (0, 1, 2, ... in the order inserted):
// open addressing, at most half full. Most lookups are of pointers not there
// (every container converted is looked up, few are seen twice), and in a
// big table each one is a cache miss: past 512 pointers a filter of 2^16
// bits (8 KiB) answers most of them first. Small values (a call's
// arguments) never pay for the filter.
class PointerIndex
{
public:
    bool isEmpty() const { return m_count == 0; }

    // The pointer's number, or -1.
    qsizetype indexOf(const void *pointer) const
    {
        if (m_count == 0 || !mayHold(pointer))
            return -1;
        for (std::size_t i = hashSlot(pointer, 0, m_bits);; i = (i + 1) & mask()) {
            if (m_slots[i].pointer == pointer)
                return qsizetype(m_slots[i].index);
            if (!m_slots[i].pointer)
                return -1;
        }
    }

    // pointer: not null, not inserted yet. Returns its number.
    qsizetype insert(const void *pointer)
    {
        if (2 * (m_count + 1) > m_slots.size())
            grow();
        place(Slot{pointer, m_count});
        if (!m_filter.empty())
            addToFilter(pointer);
        return qsizetype(m_count++);
    }

private:
    struct Slot
    {
        const void *pointer;
        std::size_t index;
    };
    static constexpr int FilterBits = 16;
    static constexpr int FilterFromBits = 10; // slots: from 513 pointers on

    // Middle bits of the scrambled pointer: the table's slot takes the
    // highest, and the lowest repeat (aligned pointers times an odd number).
    static std::size_t filterBit(const void *pointer)
    {
        return (hashSlot(pointer, 0, 64) >> 32) & ((std::size_t(1) << FilterBits) - 1);
    }
    bool mayHold(const void *pointer) const
    {
        if (m_filter.empty())
            return true;
        const std::size_t bit = filterBit(pointer);
        return m_filter[bit / 64] & (std::uint64_t(1) << (bit % 64));
    }
    void addToFilter(const void *pointer)
    {
        const std::size_t bit = filterBit(pointer);
        m_filter[bit / 64] |= std::uint64_t(1) << (bit % 64);
    }
    std::size_t mask() const { return m_slots.size() - 1; }

    void place(Slot slot)
    {
        std::size_t i = hashSlot(slot.pointer, 0, m_bits);
        while (m_slots[i].pointer)
            i = (i + 1) & mask();
        m_slots[i] = slot;
    }

    void grow()
    {
        m_bits = m_slots.empty() ? 3 : m_bits + 1;
        std::vector<Slot> old(std::size_t(1) << m_bits, Slot{nullptr, 0});
        old.swap(m_slots); // old: the slots so far
        const bool filterNow = m_filter.empty() && m_bits >= FilterFromBits;
        if (filterNow)
            m_filter.assign(std::size_t(1) << (FilterBits - 6), 0);
        for (const Slot &slot : old) {
            if (slot.pointer) {
                place(slot);
                if (filterNow)
                    addToFilter(slot.pointer);
            }
        }
    }

    std::vector<Slot> m_slots; // a power of two
    std::vector<std::uint64_t> m_filter;
    std::size_t m_count = 0;
    int m_bits = 0;
};

// ---------------------------------------------------------------------------
// Paths: "result.items[3]", "args[2].name", "value[\"a key\"]"

bool isIdentifier(QStringView name)
{
    if (name.isEmpty() || name.front().isDigit())
        return false;
    for (QChar c : name) {
        const char16_t u = c.unicode();
        if (!((u >= u'a' && u <= u'z') || (u >= u'A' && u <= u'Z') || (u >= u'0' && u <= u'9') || u == u'_'))
            return false;
    }
    return true;
}

void appendName(QString &text, QStringView name)
{
    if (isIdentifier(name)) {
        text += QLatin1Char('.');
        text += name;
        return;
    }
    text += QLatin1String("[\"");
    for (qsizetype i = 0; i < name.size(); ++i) {
        const QChar c = name[i];
        switch (c.unicode()) {
        case u'"': text += QLatin1String("\\\""); break;
        case u'\\': text += QLatin1String("\\\\"); break;
        case u'\n': text += QLatin1String("\\n"); break;
        case u'\r': text += QLatin1String("\\r"); break;
        case u'\t': text += QLatin1String("\\t"); break;
        default:
            if (c.unicode() < 0x20 || c.unicode() == 0x7F) {
                text += QLatin1Char('\\') + QString::number(c.unicode());
            } else if (c.isHighSurrogate() && i + 1 < name.size() && name[i + 1].isLowSurrogate()) {
                text += c;
                text += name[++i];
            } else if (c.isSurrogate()) {
                // Unpaired: escaped, so that the message stays valid text.
                text += QLatin1String("\\u{") + QString::number(c.unicode(), 16).toUpper() + QLatin1Char('}');
            } else {
                text += c;
            }
        }
    }
    text += QLatin1String("\"]");
}

void appendIndex(QString &text, qint64 index)
{
    text += QLatin1Char('[') + QString::number(index) + QLatin1Char(']');
}

// Bytes as a short, printable excerpt for messages: "\xff\xfeab".
QString excerpt(const char *data, size_t length)
{
    QString text;
    const size_t shown = qMin<size_t>(length, 24);
    for (size_t i = 0; i < shown; ++i) {
        const auto c = static_cast<unsigned char>(data[i]);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            text += QLatin1Char(char(c));
        else
            text += QStringLiteral("\\x%1").arg(uint(c), 2, 16, QLatin1Char('0'));
    }
    if (shown < length)
        text += QLatin1String("...");
    return text;
}

// ---------------------------------------------------------------------------
// UTF-8

inline bool wordIsAscii(const unsigned char *s)
{
    std::uint64_t word;
    std::memcpy(&word, s, sizeof word);
    return (word & 0x8080808080808080ull) == 0;
}

// Decodes well-formed UTF-8 (no overlongs, no surrogates, nothing past
// U+10FFFF) into UTF-16 at out, which has room for `length` units. Returns the
// units written, or -1 when the bytes are not UTF-8. out may be null: then it
// only validates.
qsizetype decodeUtf8(const unsigned char *s, size_t length, char16_t *out)
{
    const unsigned char *const end = s + length;
    char16_t *o = out;
    while (s < end) {
        // Runs of ASCII, a word at a time.
        while (end - s >= 8 && wordIsAscii(s)) {
            if (o) {
                for (int i = 0; i < 8; ++i)
                    *o++ = s[i];
            }
            s += 8;
        }
        if (s == end)
            break;
        const unsigned char c = *s;
        if (c < 0x80) {
            if (o)
                *o++ = c;
            ++s;
            continue;
        }
        int extra;
        char32_t min;
        char32_t code;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, min = 0x80, code = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, min = 0x800, code = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, min = 0x10000, code = c & 0x07;
        } else {
            return -1;
        }
        if (end - s <= extra)
            return -1;
        for (int i = 1; i <= extra; ++i) {
            if ((s[i] & 0xC0) != 0x80)
                return -1;
            code = (code << 6) | (s[i] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return -1;
        if (o) {
            if (code >= 0x10000) {
                *o++ = char16_t(0xD800 + ((code - 0x10000) >> 10));
                *o++ = char16_t(0xDC00 + ((code - 0x10000) & 0x3FF));
            } else {
                *o++ = char16_t(code);
            }
        }
        s += extra + 1;
    }
    return o - out;
}

bool isAscii(const char *data, size_t length)
{
    const auto *s = reinterpret_cast<const unsigned char *>(data);
    size_t i = 0;
    for (; i + 8 <= length; i += 8) {
        if (!wordIsAscii(s + i))
            return false;
    }
    for (; i < length; ++i) {
        if (s[i] >= 0x80)
            return false;
    }
    return true;
}

// Bytes as QString when they are UTF-8; a null QString (and ok = false) when
// not. Exact: a byte order mark or U+0000 stays in the text.
QString utf8ToString(const char *data, size_t length, bool *ok)
{
    *ok = true;
    if (length == 0)
        return QString(QLatin1String("")); // empty, not null
    if (isAscii(data, length))
        return QString::fromLatin1(data, qsizetype(length));
    if (length > size_t(std::numeric_limits<qsizetype>::max() / 2)) {
        *ok = false;
        return {};
    }
    QString text(qsizetype(length), Qt::Uninitialized);
    const qsizetype units = decodeUtf8(reinterpret_cast<const unsigned char *>(data), length,
                                       reinterpret_cast<char16_t *>(text.data()));
    if (units < 0) {
        *ok = false;
        return {};
    }
    text.truncate(units);
    return text;
}

// QString -> UTF-8 with a check that Qt's toUtf8() leaves out: an unpaired
// surrogate would silently become '?'. Returns false for such a string.
bool hasUnpairedSurrogate(const QChar *p, qsizetype n)
{
    for (qsizetype i = 0; i < n; ++i) {
        const char16_t u = p[i].unicode();
        if (u < 0xD800 || u > 0xDFFF)
            continue;
        if (u <= 0xDBFF && i + 1 < n && p[i + 1].unicode() >= 0xDC00 && p[i + 1].unicode() <= 0xDFFF) {
            ++i;
            continue;
        }
        return true;
    }
    return false;
}

// Encodes n UTF-16 units into out (room for 3 * n bytes). -1: unpaired surrogate.
qsizetype encodeUtf8(const QChar *p, qsizetype n, char *out)
{
    char *o = out;
    for (qsizetype i = 0; i < n; ++i) {
        char32_t u = p[i].unicode();
        if (u < 0x80) {
            *o++ = char(u);
        } else if (u < 0x800) {
            *o++ = char(0xC0 | (u >> 6));
            *o++ = char(0x80 | (u & 0x3F));
        } else if (u < 0xD800 || u > 0xDFFF) {
            *o++ = char(0xE0 | (u >> 12));
            *o++ = char(0x80 | ((u >> 6) & 0x3F));
            *o++ = char(0x80 | (u & 0x3F));
        } else {
            if (u > 0xDBFF || i + 1 >= n || p[i + 1].unicode() < 0xDC00 || p[i + 1].unicode() > 0xDFFF)
                return -1;
            u = 0x10000 + ((u - 0xD800) << 10) + (p[i + 1].unicode() - 0xDC00);
            ++i;
            *o++ = char(0xF0 | (u >> 18));
            *o++ = char(0x80 | ((u >> 12) & 0x3F));
            *o++ = char(0x80 | ((u >> 6) & 0x3F));
            *o++ = char(0x80 | (u & 0x3F));
        }
    }
    return o - out;
}

// ---------------------------------------------------------------------------
// Lua -> QVariant

// A string key and its value, in the order lua_next gave them. id: the key's
// Lua string (interned when short): the same id, the same text, while the
// value is converted (the root keeps every key alive). key stays null while
// the key's text is in the reader's cache: a record of a known shape needs
// only the ids (Reader::fillKeys makes the rest).
struct NamedEntry
{
    const char *id;
    size_t length;
    QString key;
    QVariant value;
};

} // namespace

Q_DECLARE_TYPEINFO(NamedEntry, Q_RELOCATABLE_TYPE);

namespace {

class Reader
{
public:
    Reader(lua_State *L, const QString &where) : m_L(L), m_where(where) { }

    // The value at index; `segments` keys lead to it from the root.
    QVariant read(int index, int segments, bool *isTable, int *height)
    {
        lua_State *L = m_L;
        switch (lua_type(L, index)) {
        case LUA_TNIL:
        case LUA_TNONE:
            return {};
        case LUA_TBOOLEAN:
            return QVariant(bool(lua_toboolean(L, index)));
        case LUA_TNUMBER:
            if (lua_isinteger(L, index))
                return QVariant(qlonglong(lua_tointeger(L, index)));
            return QVariant(double(lua_tonumber(L, index)));
        case LUA_TSTRING:
            return readString(index);
        case LUA_TTABLE:
            *isTable = true;
            return readTable(index, segments, height);
        case LUA_TUSERDATA: {
            // A QObject: the pointer, for qvariant_cast<QObject *>.
            ObjectRef ref;
            if (ObjectLib::toRef(L, index, &ref)) {
                if (QObject *object = ref.object.data())
                    return QVariant::fromValue(object);
                fail(segments, QStringLiteral("the %1 was destroyed")
                                       .arg(QLatin1String(ref.cls ? ref.cls->className().constData() : "QObject")));
            }
            fail(segments, QStringLiteral("cannot convert a %1").arg(QLatin1String(luaL_typename(L, index))));
        }
        default:
            // __name is not consulted: the error names Lua's own type.
            fail(segments, QStringLiteral("cannot convert a %1").arg(QLatin1String(luaL_typename(L, index))));
        }
    }

private:
    using NamedEntries = QVarLengthArray<NamedEntry, 8>;

    struct CachedString
    {
        const char *data = nullptr;
        QString text;
    };
    // The cache and the shapes start small and grow once the value has
    // BigFrom entries: a call's arguments should not pay for a 256-slot
    // cache (8 KiB made and destroyed, half of reading a small table).
    static constexpr int SmallCacheBits = 4;
    static constexpr int CacheBits = 8;
    static constexpr int BigFrom = 128;
    static constexpr size_t CacheMaxLength = 64;

    struct Memo
    {
        QVariant value;
        int height;
    };

    QVariant readString(int index)
    {
        size_t length = 0;
        const char *data = lua_tolstring(m_L, index, &length); // a string: nothing converts in place
        // Short strings are interned by Lua and no string is freed while the
        // value is converted (the root keeps it alive), so the same pointer
        // means the same text: a row's keys are decoded once, not per row.
        // A value's text is kept the second time its string is seen: a
        // column of distinct names would otherwise swap a shared text in and
        // out of the cache (two atomic reference counts) on every row.
        CachedString *slot = nullptr;
        if (m_cache && length <= CacheMaxLength) {
            slot = &m_cache[hashSlot(data, 0, m_cacheBits)];
            if (slot->data == data && !slot->text.isNull())
                return QVariant(slot->text);
        }
        bool ok = false;
        QString text = utf8ToString(data, length, &ok);
        if (!ok)
            return QVariant(QByteArray(data, qsizetype(length)));
        if (slot) {
            if (slot->data == data) {
                slot->text = text;
            } else {
                slot->data = data;
                if (!slot->text.isNull())
                    slot->text = QString();
            }
        }
        return QVariant(std::move(text));
    }

    // The key at slot as a map key; fails for anything but a UTF-8 string.
    // Null when the text is in the cache (see NamedEntry).
    QString readStringKey(int slot, int segments, const char **id, size_t *length, bool remember)
    {
        const char *data = lua_tolstring(m_L, slot, length);
        *id = data;
        CachedString *cached = nullptr;
        if (*length <= CacheMaxLength) {
            cached = &m_cache[hashSlot(data, 0, m_cacheBits)];
            if (cached->data == data && !cached->text.isNull())
                return QString();
        }
        bool ok = false;
        QString text = utf8ToString(data, *length, &ok);
        if (!ok)
            fail(segments, QStringLiteral("a table key is not UTF-8 text (\"%1\")").arg(excerpt(data, *length)));
        if (cached && remember) {
            cached->data = data;
            cached->text = text;
        }
        return text;
    }

    // The value is big: a full-size cache and shape table (both only
    // remember; what they held is read again when needed).
    void growCaches()
    {
        m_cacheBits = CacheBits;
        m_cache.reset(new CachedString[std::size_t(1) << CacheBits]);
        m_shapeSetBits = ShapeSetBits;
        m_shapes.reset();
    }

    // Every entry's key text, from the cache while it still holds it, else
    // decoded again (it was valid UTF-8 when it was read).
    void fillKeys(NamedEntries &named)
    {
        for (NamedEntry &entry : named) {
            if (!entry.key.isNull())
                continue;
            const CachedString &cached = m_cache[hashSlot(entry.id, 0, m_cacheBits)];
            if (cached.data == entry.id && !cached.text.isNull()) {
                entry.key = cached.text;
            } else {
                bool ok = false;
                entry.key = utf8ToString(entry.id, entry.length, &ok);
                Q_ASSERT(ok);
            }
        }
    }

    // Not inlined into read(): its frame (the entries, their scratch) would
    // be set up for every scalar read too.
    Q_NEVER_INLINE QVariant readTable(int index, int segments, int *height)
    {
        lua_State *L = m_L;
        if (segments >= MaxDepth)
            fail(segments, QStringLiteral("tables nested deeper than %1").arg(MaxDepth));
        const void *identity = lua_topointer(L, index);
        for (int i = 0; i < segments; ++i) {
            if (m_visiting[i] == identity)
                fail(segments, QStringLiteral("a cycle back to %1").arg(pathText(i)));
        }
        if (!m_memoIndex.isEmpty()) {
            const qsizetype memo = m_memoIndex.indexOf(identity);
            if (memo >= 0) {
                const Memo *it = &m_memos[std::size_t(memo)];
                if (segments + it->height > MaxDepth)
                    fail(segments, QStringLiteral("tables nested deeper than %1").arg(MaxDepth));
                *height = it->height;
                return it->value;
            }
        }
        if (!lua_checkstack(L, 3))
            fail(segments, QStringLiteral("the Lua stack is full"));
        if (!m_cache)
            m_cache.reset(new CachedString[std::size_t(1) << m_cacheBits]);
        m_visiting[segments] = identity;

        // One walk. Keys 1, 2, 3, ... in order (Lua's array part) append to
        // list; anything else goes to ints or strings, sorted out at the end.
        QVariantList list;
        std::vector<std::pair<lua_Integer, QVariant>> ints;
        NamedEntries named; // string keys, in lua_next's order
        if (const lua_Unsigned length = lua_rawlen(L, index)) // a hint only: any border
            list.reserve(qsizetype(qMin<lua_Unsigned>(length, 1u << 16)));
        bool nested = false;
        int childHeight = 0;

        lua_pushnil(L);
        const int keySlot = lua_gettop(L);
        m_keySlot[segments] = keySlot;
        while (lua_next(L, index)) {
            if (++m_entries == BigFrom)
                growCaches(); // between entries: no slot is held
            const int keyType = lua_type(L, keySlot);
            bool isTable = false;
            int h = 0;
            if (keyType == LUA_TNUMBER && lua_isinteger(L, keySlot)) {
                const lua_Integer key = lua_tointeger(L, keySlot);
                QVariant value = read(keySlot + 1, segments + 1, &isTable, &h);
                if (ints.empty() && named.isEmpty() && key == lua_Integer(list.size()) + 1)
                    list.append(std::move(value));
                else
                    ints.emplace_back(key, std::move(value));
            } else if (keyType == LUA_TSTRING) {
                const char *id = nullptr;
                size_t length = 0;
                // Past a record's size, a map: its keys rarely come again,
                // and remembering each costs two atomic reference counts.
                QString key = readStringKey(keySlot, segments, &id, &length, named.size() < MaxRecordKeys);
                named.append(NamedEntry{id, length, std::move(key), read(keySlot + 1, segments + 1, &isTable, &h)});
            } else if (keyType == LUA_TNUMBER) {
                fail(segments, QStringLiteral("a table key is a non-integer number (%1)")
                                       .arg(QString::number(lua_tonumber(L, keySlot), 'g', 17)));
            } else {
                fail(segments, QStringLiteral("a table key is a %1").arg(QLatin1String(luaL_typename(L, keySlot))));
            }
            if (isTable) {
                nested = true;
                childHeight = qMax(childHeight, h);
            }
            lua_settop(L, keySlot);
        }

        QVariant result;
        if (ints.empty() && named.isEmpty()) {
            // Keys 1..n, or an empty table: a list.
            result = QVariant(list);
        } else if (list.isEmpty() && ints.empty() && named.size() <= MaxRecordKeys) {
            result = QVariant(namedMap(named)); // a record: a few string keys only
        } else if (list.isEmpty() && ints.empty()) {
            // String keys only, sorted first: the tree is built at its end.
            fillKeys(named);
            result = QVariant(QVariantMap(sortedMap(named, sortedOrder(named, m_order))));
        } else if (named.isEmpty() && isRestOfSequence(ints, list.size())) {
            const qsizetype prefix = list.size();
            list.resize(prefix + qsizetype(ints.size()));
            for (auto &entry : ints)
                list[qsizetype(entry.first) - 1] = std::move(entry.second);
            result = QVariant(list);
        } else {
            // Integer keys become decimal strings; one that collides with a
            // string key would lose a value: an error, not a silent pick.
            fillKeys(named);
            std::map<QString, QVariant> strings = sortedMap(named, sortedOrder(named, m_order));
            const auto addInteger = [&](lua_Integer key, QVariant &&value) {
                QString name = QString::number(key);
                if (!strings.emplace(name, std::move(value)).second)
                    fail(segments, QStringLiteral("the keys %1 and \"%1\" would both be \"%1\"").arg(name));
            };
            for (qsizetype i = 0; i < list.size(); ++i)
                addInteger(lua_Integer(i + 1), std::move(list[i]));
            for (auto &entry : ints)
                addInteger(entry.first, std::move(entry.second));
            result = QVariant(QVariantMap(std::move(strings)));
        }
        *height = childHeight + 1;
        // A table of tables that shows up again (a DAG) is converted once:
        // QVariant's implicit sharing keeps the result as small as the input.
        if (nested) {
            m_memoIndex.insert(identity); // numbered as m_memos
            m_memos.push_back(Memo{result, *height});
        }
        return result;
    }

    struct Shape
    {
        std::vector<const char *> ids;  // a record's key ids, in lua_next's order
        std::vector<int> order;         // their indices sorted by key
        std::optional<QVariantMap> map; // its keys, null values; once the shape repeats
        bool recent = false;            // the way of its set used last
    };

    // The entries' indices sorted by key (QString's order: UTF-16 code
    // units, then length), into order (its capacity reused). Sorted by
    // their first eight units held in the sort keys, then the rest: most
    // comparisons never read a key's text (scattered in memory).
    const std::vector<int> &sortedOrder(const NamedEntries &named, std::vector<int> &order)
    {
        const auto n = std::size_t(named.size());
        m_sortKeys.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            const QString &key = named[qsizetype(i)].key;
            m_sortKeys[i] = SortKey{{unitsOf(key, 0), unitsOf(key, 4)},
                                    reinterpret_cast<const char16_t *>(key.constData()), key.size(), int(i)};
        }
        const auto less = [](const SortKey &a, const SortKey &b) {
            if (a.prefix[0] != b.prefix[0])
                return a.prefix[0] < b.prefix[0];
            if (a.prefix[1] != b.prefix[1])
                return a.prefix[1] < b.prefix[1];
            const qsizetype common = qMin(a.size, b.size);
            for (qsizetype i = PrefixUnits; i < common; ++i) {
                if (a.text[i] != b.text[i])
                    return a.text[i] < b.text[i];
            }
            return a.size < b.size;
        };
        if (n <= RadixFrom) {
            std::sort(m_sortKeys.begin(), m_sortKeys.end(), less);
        } else {
            radixSortByPrefix();
            // Keys alike in their first eight units: in order by the rest.
            for (std::size_t i = 0; i < n;) {
                std::size_t end = i + 1;
                while (end < n && m_sortKeys[end].prefix[0] == m_sortKeys[i].prefix[0]
                       && m_sortKeys[end].prefix[1] == m_sortKeys[i].prefix[1])
                    ++end;
                if (end - i > 1)
                    std::sort(m_sortKeys.begin() + std::ptrdiff_t(i), m_sortKeys.begin() + std::ptrdiff_t(end), less);
                i = end;
            }
        }
        order.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            order[i] = m_sortKeys[i].index;
        return order;
    }

    // Many keys (a map, not a record): sorted by their prefixes a byte at a
    // time from the lowest (LSD radix sort, stable), skipping the bytes all
    // keys share (keys like "key1".."key10000" differ in a few): a few
    // passes without a comparison instead of n log n of them (std::sort
    // here was a fifth of reading a 10,000-key map).
    static constexpr std::size_t RadixFrom = 64;

    void radixSortByPrefix()
    {
        const std::size_t n = m_sortKeys.size();
        constexpr int Bytes = 16;
        std::vector<std::array<std::uint32_t, 256>> counts(Bytes);
        for (auto &count : counts)
            count.fill(0);
        const auto byteOf = [](const SortKey &key, int b) { // b = 0: the lowest byte of prefix[1]
            return unsigned((b < 8 ? key.prefix[1] >> (8 * b) : key.prefix[0] >> (8 * (b - 8))) & 0xFF);
        };
        for (const SortKey &key : m_sortKeys) {
            for (int b = 0; b < Bytes; ++b)
                ++counts[std::size_t(b)][byteOf(key, b)];
        }
        m_radixScratch.resize(n);
        for (int b = 0; b < Bytes; ++b) {
            auto &count = counts[std::size_t(b)];
            if (count[byteOf(m_sortKeys[0], b)] == n)
                continue; // every key has this byte
            std::uint32_t at = 0;
            for (auto &c : count) {
                const std::uint32_t here = c;
                c = at;
                at += here;
            }
            for (const SortKey &key : m_sortKeys)
                m_radixScratch[count[byteOf(key, b)]++] = key;
            m_sortKeys.swap(m_radixScratch);
        }
    }

    static constexpr qsizetype PrefixUnits = 8;
    struct SortKey
    {
        std::uint64_t prefix[2]; // units 0-3 and 4-7, the first the highest; 0 past the end
        const char16_t *text;
        qsizetype size;
        int index;
    };

    // Comparing prefixes first keeps QString's order: where two prefixes
    // differ, either both keys have a unit there and it decides, or one key
    // ends there (0) and the other goes on with a unit above 0: the shorter
    // is a proper prefix of the longer, so less. Equal prefixes: the keys'
    // first eight units (or all, when shorter) are the same; compare on.
    static std::uint64_t unitsOf(const QString &key, qsizetype from)
    {
        const QChar *text = key.constData();
        std::uint64_t units = 0;
        for (qsizetype i = from; i < from + 4; ++i)
            units = (units << 16) | (i < key.size() ? text[i].unicode() : 0u);
        return units;
    }

    // The entries in key order: each goes in at the end, one comparison.
    static std::map<QString, QVariant> sortedMap(NamedEntries &named, const std::vector<int> &order)
    {
        std::map<QString, QVariant> map;
        for (int i : order)
            map.emplace_hint(map.end(), std::move(named[i].key), std::move(named[i].value));
        return map;
    }

    // Whether shape holds exactly the keys of named, in the same order.
    static bool isShapeOf(const Shape &shape, const NamedEntries &named)
    {
        const auto n = std::size_t(named.size());
        if (n != shape.ids.size())
            return false;
        for (std::size_t i = 0; i < n; ++i) {
            if (shape.ids[i] != named[qsizetype(i)].id)
                return false;
        }
        return true;
    }

    // A record's map. Records of one kind (rows of a table, or the `pos` of
    // every row) share their keys, which lua_next then gives in the same
    // order: shapes seen (key ids and their sorted order) are remembered by
    // their first key and size, and a record of a known shape is a copy of
    // a map with its keys (Qt copies the tree as it is, with no comparisons)
    // whose values are filled in in key order. The cache has two ways a set:
    // records of two kinds that alternate (a row and its `pos`) and happen to
    // share a set do not evict each other.
    QVariantMap namedMap(NamedEntries &named)
    {
        const auto n = std::size_t(named.size());
        if (n == 0)
            return {};
        if (!m_shapes)
            m_shapes.reset(new Shape[std::size_t(2) << m_shapeSetBits]);
        const std::size_t set = hashSlot(named[0].id, n, m_shapeSetBits);
        Shape *ways = &m_shapes[set * 2];
        int way = ways[0].recent ? 0 : 1; // the one used last first
        bool known = isShapeOf(ways[way], named);
        if (!known)
            known = isShapeOf(ways[way ^= 1], named); // else: replace the other
        ways[way].recent = true;
        ways[way ^ 1].recent = false;
        Shape &shape = ways[way];
        if (!known) {
            fillKeys(named);
            shape.ids.resize(n);
            for (std::size_t i = 0; i < n; ++i)
                shape.ids[i] = named[qsizetype(i)].id;
            sortedOrder(named, shape.order);
            shape.map.reset(); // made when the shape comes again
            return QVariantMap(sortedMap(named, shape.order));
        }
        if (!shape.map) {
            fillKeys(named);
            std::map<QString, QVariant> keys;
            for (int i : shape.order)
                keys.emplace_hint(keys.end(), named[i].key, QVariant());
            shape.map.emplace(std::move(keys));
        }
        QVariantMap map = *shape.map;
        auto it = map.begin(); // detaches: a structural copy of the tree
        for (int i : shape.order) {
            it.value() = std::move(named[i].value);
            ++it;
        }
        return map;
    }

    // Whether the out-of-order integer keys and the in-order prefix 1..prefix
    // together are exactly 1..n. The keys are distinct (they are a table's),
    // so it is enough that every one lies in range and none in the prefix.
    static bool isRestOfSequence(const std::vector<std::pair<lua_Integer, QVariant>> &ints, qsizetype prefix)
    {
        const lua_Integer n = lua_Integer(prefix) + lua_Integer(ints.size());
        for (const auto &entry : ints) {
            if (entry.first <= lua_Integer(prefix) || entry.first > n)
                return false;
        }
        return true;
    }

    // The path of the value reached through the first `segments` keys.
    QString pathText(int segments) const
    {
        lua_State *L = m_L;
        QString text = m_where;
        for (int i = 0; i < segments; ++i) {
            const int slot = m_keySlot[i];
            if (lua_type(L, slot) == LUA_TNUMBER) {
                appendIndex(text, qint64(lua_tointeger(L, slot)));
            } else {
                size_t length = 0;
                const char *data = lua_tolstring(L, slot, &length);
                bool ok = false;
                const QString name = utf8ToString(data, length, &ok);
                appendName(text, ok ? QStringView(name) : QStringView(excerpt(data, length)));
            }
        }
        return text;
    }

    [[noreturn]] void fail(int segments, const QString &what) const
    {
        throwConversion(pathText(segments) + QLatin1String(": ") + what);
    }

    lua_State *m_L;
    const QString &m_where;
    std::unique_ptr<CachedString[]> m_cache;          // made with the first table
    PointerIndex m_memoIndex;                         // tables of tables done
    std::vector<Memo> m_memos;                        // their values, by number
    static constexpr int SmallShapeSetBits = 1;
    static constexpr int ShapeSetBits = 4; // 16 sets of two ways each
    static constexpr qsizetype MaxRecordKeys = 32;     // more string keys: a map, not a record
    std::unique_ptr<Shape[]> m_shapes;                // shapes seen, by first key and size
    int m_shapeSetBits = SmallShapeSetBits;
    int m_cacheBits = SmallCacheBits;
    qint64 m_entries = 0;                             // table entries read so far
    std::vector<int> m_order;                         // scratch for sortedOrder
    std::vector<SortKey> m_sortKeys;                  // scratch for sortedOrder
    std::vector<SortKey> m_radixScratch;              // and for radixSortByPrefix
    int m_keySlot[MaxDepth];                          // [i]: slot of the key below level i
    const void *m_visiting[MaxDepth];                 // [i]: the table at level i
};

// ---------------------------------------------------------------------------
// QVariant -> Lua

bool isContainerType(int typeId)
{
    switch (typeId) {
    case QMetaType::QVariantList:
    case QMetaType::QVariantMap:
    case QMetaType::QVariantHash:
    case QMetaType::QStringList:
    case QMetaType::QJsonValue:
    case QMetaType::QJsonArray:
    case QMetaType::QJsonObject:
    case QMetaType::QJsonDocument:
        return true;
    default:
        return typeId >= QMetaType::User; // may be an iterable container
    }
}

class Writer
{
public:
    Writer(lua_State *L, const QString &where) : m_L(L), m_where(where) { }

    void push(const QVariant &v, int segments) { push(v, v.typeId(), segments); }

    // typeId: v's, which containers have already asked for (typeId() is a
    // call into Qt, not an inline read).
    void push(const QVariant &v, int typeId, int segments)
    {
        lua_State *L = m_L;
        switch (typeId) {
        case QMetaType::UnknownType:
        case QMetaType::Nullptr:
            lua_pushnil(L);
            return;
        case QMetaType::Bool:
            lua_pushboolean(L, *static_cast<const bool *>(v.constData()));
            return;
        // The two common ones read in place: toLongLong() goes through
        // QMetaType::convert (about 230 instructions a value, in a call's
        // arguments).
        case QMetaType::Int:
            lua_pushinteger(L, lua_Integer(*static_cast<const int *>(v.constData())));
            return;
        case QMetaType::LongLong:
            lua_pushinteger(L, lua_Integer(*static_cast<const qlonglong *>(v.constData())));
            return;
        case QMetaType::Short:
        case QMetaType::Long:
        case QMetaType::Char:
        case QMetaType::SChar:
            lua_pushinteger(L, lua_Integer(v.toLongLong()));
            return;
        case QMetaType::Char16:
            lua_pushinteger(L, lua_Integer(*static_cast<const char16_t *>(v.constData())));
            return;
        case QMetaType::Char32:
            lua_pushinteger(L, lua_Integer(*static_cast<const char32_t *>(v.constData())));
            return;
        case QMetaType::UInt:
        case QMetaType::UShort:
        case QMetaType::ULong:
        case QMetaType::ULongLong:
        case QMetaType::UChar: {
            const qulonglong value = v.toULongLong();
            if (value > qulonglong(std::numeric_limits<lua_Integer>::max()))
                fail(segments, QStringLiteral("the unsigned integer %1 does not fit a Lua integer").arg(value));
            lua_pushinteger(L, lua_Integer(value));
            return;
        }
        case QMetaType::Double:
            lua_pushnumber(L, *static_cast<const double *>(v.constData()));
            return;
        case QMetaType::Float:
            lua_pushnumber(L, lua_Number(*static_cast<const float *>(v.constData())));
            return;
        case QMetaType::QString:
            pushString(*static_cast<const QString *>(v.constData()), segments);
            return;
        case QMetaType::QChar: {
            const QChar c = *static_cast<const QChar *>(v.constData());
            pushString(QString(c), segments);
            return;
        }
        case QMetaType::QByteArray: {
            const auto *bytes = static_cast<const QByteArray *>(v.constData());
            lua_pushlstring(L, bytes->constData(), size_t(bytes->size()));
            return;
        }
        case QMetaType::QStringList:
            pushStringList(*static_cast<const QStringList *>(v.constData()), segments);
            return;
        case QMetaType::QVariantList:
            pushList(*static_cast<const QVariantList *>(v.constData()), segments);
            return;
        case QMetaType::QVariantMap:
            pushMap(*static_cast<const QVariantMap *>(v.constData()), segments);
            return;
        case QMetaType::QVariantHash:
            pushMap(*static_cast<const QVariantHash *>(v.constData()), segments);
            return;
        case QMetaType::QJsonValue:
            pushJson(*static_cast<const QJsonValue *>(v.constData()), segments);
            return;
        case QMetaType::QJsonObject:
            pushJsonObject(*static_cast<const QJsonObject *>(v.constData()), segments);
            return;
        case QMetaType::QJsonArray:
            pushJsonArray(*static_cast<const QJsonArray *>(v.constData()), segments);
            return;
        case QMetaType::QJsonDocument: {
            const auto *document = static_cast<const QJsonDocument *>(v.constData());
            if (document->isArray())
                pushJsonArray(document->array(), segments);
            else if (document->isObject())
                pushJsonObject(document->object(), segments);
            else
                lua_pushnil(L);
            return;
        }
        default:
            break;
        }
        if (v.metaType() == QMetaType::fromType<qfloat16>()) {
            lua_pushnumber(L, lua_Number(float(*static_cast<const qfloat16 *>(v.constData()))));
            return;
        }
        // QObjects: the one Lua value of each object (weakly referenced).
        if (v.metaType() == QMetaType::fromType<ObjectRef>()) {
            ObjectLib::push(L, *static_cast<const ObjectRef *>(v.constData()));
            return;
        }
        if (ObjectValues::isObjectPointer(v)) {
            ObjectLib::push(L, ObjectValues::objectPointer(v));
            return;
        }
        // Other containers Qt can iterate: QList<int>, std::vector<QString>,
        // QMap<QString, int>, QHash<int, QString>, ...
        if (v.canView<QAssociativeIterable>()) {
            pushIterableMap(v.value<QAssociativeIterable>(), segments);
            return;
        }
        if (v.canView<QSequentialIterable>()) {
            pushIterableList(v.value<QSequentialIterable>(), segments);
            return;
        }
        fail(segments, QStringLiteral("cannot convert a QVariant of type %1")
                               .arg(QLatin1String(v.metaType().name() ? v.metaType().name() : "unknown")));
    }

    // Ensures room for the root value.
    void reserveRoot()
    {
        if (!lua_checkstack(m_L, 2))
            fail(0, QStringLiteral("the Lua stack is full"));
    }

    // Pushes the VM's key cache (a table of Lua strings) below the value to
    // come; the caller removes it after the value is written.
    void pushKeyCache()
    {
        lua_State *L = m_L;
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KeyCacheTag) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_createtable(L, KeyCacheSize, 0);
            lua_pushvalue(L, -1);
            lua_rawsetp(L, LUA_REGISTRYINDEX, &KeyCacheTag);
        }
        m_keyCache = lua_gettop(L);
    }

private:
    // A key on the way: a name (not null) or an index.
    struct Segment
    {
        const QString *name;
        qint64 index;
    };

    // How often containers shared through Qt's implicit sharing may be
    // written out again: a value that holds the same list twice is fine, one
    // that doubles at each of 64 levels would never finish.
    bool overRepeatAllowance() const { return m_repeated > 8 * m_distinct + (qint64(1) << 20); }

    void count(int segments)
    {
        if (m_repeating) {
            if (++m_repeated, overRepeatAllowance())
                fail(segments, QStringLiteral("containers shared within the value would expand to more than "
                                              "%1 values").arg(m_repeated + m_distinct));
        } else {
            ++m_distinct;
        }
    }

    void pushString(const QString &text, int segments)
    {
        const qsizetype n = text.size();
        const QChar *p = text.constData();
        constexpr qsizetype Short = 256;
        if (n <= Short) {
            char buffer[3 * Short];
            const qsizetype length = encodeUtf8(p, n, buffer);
            if (length < 0)
                failSurrogate(segments);
            lua_pushlstring(m_L, buffer, size_t(length));
            return;
        }
        if (hasUnpairedSurrogate(p, n))
            failSurrogate(segments);
        const QByteArray utf8 = text.toUtf8();
        lua_pushlstring(m_L, utf8.constData(), size_t(utf8.size()));
    }

    // A map's key. Records repeat their keys, and a key shared through
    // implicit sharing (QStringLiteral, or read from Lua: one QString per
    // key) is the same text wherever its data pointer is the same, as long
    // as the value being written holds it. Such keys are encoded and
    // interned by Lua once a push, then fetched from the key cache's array.
    void pushKey(const QString &key, int segments)
    {
        if (m_keyCache && !key.isDetached()) {
            const QChar *data = key.constData();
            const auto slot = int((reinterpret_cast<quintptr>(data) >> 3) % KeyCacheSize);
            if (!m_keys)
                m_keys.reset(new CachedKey[KeyCacheSize]());
            CachedKey &cached = m_keys[slot];
            if (cached.data == data && cached.size == key.size()) {
                lua_rawgeti(m_L, m_keyCache, slot + 1);
                return;
            }
            pushString(key, segments);
            lua_pushvalue(m_L, -1);
            lua_rawseti(m_L, m_keyCache, slot + 1);
            cached = CachedKey{data, key.size()};
            return;
        }
        pushString(key, segments);
    }

    [[noreturn]] void failSurrogate(int segments) const
    {
        fail(segments, QStringLiteral("a string with an unpaired UTF-16 surrogate is not text"));
    }

    void enter(int segments)
    {
        if (segments >= MaxDepth)
            fail(segments, QStringLiteral("values nested deeper than %1").arg(MaxDepth));
        if (!lua_checkstack(m_L, 3))
            fail(segments, QStringLiteral("the Lua stack is full"));
    }

    // Identity of a container's shared data; null for empty ones.
    static const void *identity(const QVariantList &list) { return list.isEmpty() ? nullptr : list.constData(); }
    template<typename Map>
    static const void *identity(const Map &map)
    {
        return map.isEmpty() ? nullptr : static_cast<const void *>(&map.cbegin().value());
    }

    // Around a QVariant container: counts repeats of shared containers.
    struct SharedScope
    {
        SharedScope(Writer *w, const void *id) : writer(w), id(id)
        {
            repeat = id && w->m_done.indexOf(id) >= 0;
            if (repeat)
                ++w->m_repeating;
        }
        void done(bool nested)
        {
            if (repeat)
                --writer->m_repeating;
            else if (id && nested && writer->m_done.indexOf(id) < 0)
                writer->m_done.insert(id);
        }
        Writer *writer;
        const void *id;
        bool repeat;
    };

    void pushList(const QVariantList &list, int segments)
    {
        enter(segments);
        SharedScope shared(this, identity(list));
        lua_State *L = m_L;
        lua_createtable(L, int(qMin<qsizetype>(list.size(), std::numeric_limits<int>::max())), 0);
        bool nested = false;
        const qsizetype n = list.size();
        const QVariant *items = list.constData();
        for (qsizetype i = 0; i < n; ++i) {
            const QVariant &item = items[i];
            m_segments[segments] = Segment{nullptr, i + 1};
            count(segments + 1);
            const int typeId = item.typeId();
            nested |= isContainerType(typeId);
            push(item, typeId, segments + 1);
            lua_rawseti(L, -2, lua_Integer(i + 1));
        }
        shared.done(nested);
    }

    void pushStringList(const QStringList &list, int segments)
    {
        enter(segments);
        lua_State *L = m_L;
        lua_createtable(L, int(qMin<qsizetype>(list.size(), std::numeric_limits<int>::max())), 0);
        for (qsizetype i = 0; i < list.size(); ++i) {
            m_segments[segments] = Segment{nullptr, i + 1};
            count(segments + 1);
            pushString(list.at(i), segments + 1);
            lua_rawseti(L, -2, lua_Integer(i + 1));
        }
    }

    template<typename Map>
    void pushMap(const Map &map, int segments)
    {
        enter(segments);
        SharedScope shared(this, identity(map));
        lua_State *L = m_L;
        lua_createtable(L, 0, int(qMin<qsizetype>(map.size(), std::numeric_limits<int>::max())));
        bool nested = false;
        for (auto it = map.cbegin(), end = map.cend(); it != end; ++it) {
            m_segments[segments] = Segment{&it.key(), 0};
            count(segments + 1);
            pushKey(it.key(), segments + 1);
            const int typeId = it.value().typeId();
            nested |= isContainerType(typeId);
            push(it.value(), typeId, segments + 1);
            lua_rawset(L, -3);
        }
        shared.done(nested);
    }

    void pushJson(const QJsonValue &value, int segments)
    {
        switch (value.type()) {
        case QJsonValue::Null:
        case QJsonValue::Undefined:
            lua_pushnil(m_L);
            return;
        case QJsonValue::Bool:
            lua_pushboolean(m_L, value.toBool());
            return;
        case QJsonValue::Double: {
            // As QJsonValue::toVariant(): integral numbers are integers.
            const QVariant number = value.toVariant();
            if (number.typeId() == QMetaType::LongLong)
                lua_pushinteger(m_L, lua_Integer(number.toLongLong()));
            else
                lua_pushnumber(m_L, number.toDouble());
            return;
        }
        case QJsonValue::String:
            pushString(value.toString(), segments);
            return;
        case QJsonValue::Array:
            pushJsonArray(value.toArray(), segments);
            return;
        case QJsonValue::Object:
            pushJsonObject(value.toObject(), segments);
            return;
        }
        lua_pushnil(m_L);
    }

    void pushJsonArray(const QJsonArray &array, int segments)
    {
        enter(segments);
        lua_State *L = m_L;
        const qsizetype n = array.size();
        lua_createtable(L, int(qMin<qsizetype>(n, std::numeric_limits<int>::max())), 0);
        for (qsizetype i = 0; i < n; ++i) {
            m_segments[segments] = Segment{nullptr, i + 1};
            count(segments + 1);
            pushJson(array.at(i), segments + 1);
            lua_rawseti(L, -2, lua_Integer(i + 1));
        }
    }

    void pushJsonObject(const QJsonObject &object, int segments)
    {
        enter(segments);
        lua_State *L = m_L;
        lua_createtable(L, 0, int(qMin<qsizetype>(object.size(), std::numeric_limits<int>::max())));
        for (auto it = object.constBegin(), end = object.constEnd(); it != end; ++it) {
            const QString key = it.key();
            m_segments[segments] = Segment{&key, 0};
            count(segments + 1);
            pushString(key, segments + 1);
            pushJson(it.value(), segments + 1);
            lua_rawset(L, -3);
        }
    }

    void pushIterableList(const QSequentialIterable &iterable, int segments)
    {
        enter(segments);
        lua_State *L = m_L;
        lua_newtable(L);
        lua_Integer i = 0;
        for (auto it = iterable.constBegin(), end = iterable.constEnd(); it != end; ++it) {
            ++i;
            m_segments[segments] = Segment{nullptr, qint64(i)};
            count(segments + 1);
            push(*it, segments + 1);
            lua_rawseti(L, -2, i);
        }
    }

    void pushIterableMap(const QAssociativeIterable &iterable, int segments)
    {
        enter(segments);
        lua_State *L = m_L;
        lua_newtable(L);
        for (auto it = iterable.constBegin(), end = iterable.constEnd(); it != end; ++it) {
            const QVariant key = it.key();
            QString name;
            switch (key.typeId()) {
            case QMetaType::QString:
                name = key.toString();
                m_segments[segments] = Segment{&name, 0};
                pushString(name, segments);
                break;
            case QMetaType::QByteArray: {
                const QByteArray bytes = key.toByteArray();
                name = QString::fromUtf8(bytes);
                m_segments[segments] = Segment{&name, 0};
                lua_pushlstring(L, bytes.constData(), size_t(bytes.size()));
                break;
            }
            case QMetaType::Int:
            case QMetaType::Short:
            case QMetaType::Long:
            case QMetaType::LongLong:
            case QMetaType::UInt:
            case QMetaType::UShort:
            case QMetaType::ULong:
            case QMetaType::ULongLong:
            case QMetaType::Char:
            case QMetaType::SChar:
            case QMetaType::UChar: {
                // As a value: an unsigned key past lua_Integer fails there.
                push(key, segments);
                m_segments[segments] = Segment{nullptr, qint64(lua_tointeger(L, -1))};
                break;
            }
            default:
                fail(segments, QStringLiteral("a map key of type %1 is neither text nor an integer")
                                       .arg(QLatin1String(key.metaType().name() ? key.metaType().name() : "unknown")));
            }
            count(segments + 1);
            push(it.value(), segments + 1);
            lua_rawset(L, -3);
        }
    }

    QString pathText(int segments) const
    {
        QString text = m_where;
        for (int i = 0; i < segments; ++i) {
            if (m_segments[i].name)
                appendName(text, *m_segments[i].name);
            else
                appendIndex(text, m_segments[i].index);
        }
        return text;
    }

    [[noreturn]] void fail(int segments, const QString &what) const
    {
        throwConversion(pathText(segments) + QLatin1String(": ") + what);
    }

    struct CachedKey
    {
        const QChar *data;
        qsizetype size;
    };
    static constexpr int KeyCacheSize = 64;
    static inline const char KeyCacheTag = 0; // its address keys the registry

    lua_State *m_L;
    const QString &m_where;
    int m_keyCache = 0;                    // stack slot of the key cache; 0: none
    std::unique_ptr<CachedKey[]> m_keys;   // what m_keyCache's slots hold, this push
    Segment m_segments[MaxDepth];
    PointerIndex m_done;       // shared containers of containers written once
    int m_repeating = 0;       // > 0: writing one of them again
    qint64 m_distinct = 0;
    qint64 m_repeated = 0;
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
    index = lua_absindex(L, index);
    try {
        StackGuard guard(L);
        bool isTable = false;
        int height = 0;
        return Reader(L, where).read(index, 0, &isTable, &height);
    } catch (lua_longjmp *) {
        throw; // a Lua error (out of memory): its error object is on the stack
    } catch (...) {
        lua_settop(L, top);
        throw;
    }
}

bool pushScalar(lua_State *L, const QVariant &value)
{
    // Pushed as Writer::push does.
    switch (value.typeId()) {
    case QMetaType::UnknownType:
        lua_pushnil(L);
        return true;
    case QMetaType::Bool:
        lua_pushboolean(L, *static_cast<const bool *>(value.constData()));
        return true;
    case QMetaType::Int:
        lua_pushinteger(L, lua_Integer(*static_cast<const int *>(value.constData())));
        return true;
    case QMetaType::LongLong:
        lua_pushinteger(L, lua_Integer(*static_cast<const qlonglong *>(value.constData())));
        return true;
    case QMetaType::Double:
        lua_pushnumber(L, *static_cast<const double *>(value.constData()));
        return true;
    default:
        return false;
    }
}

void push(lua_State *L, const QVariant &value, const QString &where)
{
    // The common scalars without the writer's set-up (issue 18, row 4).
    if (lua_checkstack(L, 1) && pushScalar(L, value))
        return;
    const int top = lua_gettop(L);
    try {
        StackGuard guard(L, 1);
        Writer writer(L, where);
        writer.reserveRoot();
        // Containers that may hold maps get the key cache (pushKey).
        const int type = value.typeId();
        const bool keyed = type == QMetaType::QVariantList || type == QMetaType::QVariantMap
                || type == QMetaType::QVariantHash;
        if (keyed)
            writer.pushKeyCache();
        writer.push(value, 0);
        if (keyed)
            lua_remove(L, -2);
    } catch (lua_longjmp *) {
        throw;
    } catch (...) {
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
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
        size_t length = 0;
        const char *data = lua_tolstring(L, -1, &length);
        text = QString::fromUtf8(data, qsizetype(length));
    } else {
        text = QStringLiteral("(error object is a %1 value)").arg(QLatin1String(luaL_typename(L, index)));
    }
    lua_pop(L, 1);
    return text;
}

bool isValidUtf8(const char *data, size_t length)
{
    return decodeUtf8(reinterpret_cast<const unsigned char *>(data), length, nullptr) >= 0;
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
