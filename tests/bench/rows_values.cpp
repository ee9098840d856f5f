// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 9: the value bridge on a table-shaped result, timed on the Lua thread
// (inside exec), beside a lua_next walk that only counts: the floor. Two
// more references show what any bridge pays whatever its code: the same
// table built through Lua's C API from C data (what a push cannot do
// without), and the same QVariant built from C data and destroyed (what a
// read cannot do without: a QMap node per key, a QString per string value).
#include "rows.h"

#include <QIsle/QIsle>

#include <QIsle/QIsleLua>

#include <map>
#include <vector>

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

namespace Rows {
namespace {

using Bench::Measured;
using Bench::Row;

constexpr int RowCount = 10000;

// Entries in the table at index and in the tables it holds, one level down.
lua_Integer countEntries(lua_State *L, int index)
{
    lua_Integer n = 0;
    index = lua_absindex(L, index);
    lua_pushnil(L);
    while (lua_next(L, index)) {
        ++n;
        if (lua_istable(L, -1)) {
            const int inner = lua_gettop(L);
            lua_pushnil(L);
            while (lua_next(L, inner)) {
                ++n;
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    return n;
}

// Entries in the table at index and in every table below it.
lua_Integer countDeep(lua_State *L, int index)
{
    lua_Integer n = 0;
    index = lua_absindex(L, index);
    lua_pushnil(L);
    while (lua_next(L, index)) {
        ++n;
        if (lua_istable(L, -1))
            n += countDeep(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

double usPerRow(Bench::Clock::time_point start)
{
    return Bench::secondsSince(start) * 1e6 / RowCount;
}

// The C data the references build from: the string values and keys of
// init's tables, made before the timing.
struct Source
{
    std::vector<QByteArray> names; // 'name' .. i
    std::vector<QByteArray> keys;  // 'key' .. i, in QString's (and byte) order
    std::vector<int> keyNumbers;   // the i of keys[k]
    std::vector<QByteArray> metaNames; // 'n' .. i
    QString id = QStringLiteral("id"), name = QStringLiteral("name"), score = QStringLiteral("score"),
            active = QStringLiteral("active"), tag = QStringLiteral("tag"), x = QStringLiteral("x"),
            y = QStringLiteral("y"), pos = QStringLiteral("pos"), tags = QStringLiteral("tags"),
            meta = QStringLiteral("meta"), ok = QStringLiteral("ok"), a = QStringLiteral("a"),
            b = QStringLiteral("b");

    Source()
    {
        std::map<QByteArray, int> sorted;
        for (int i = 1; i <= RowCount; ++i) {
            names.push_back("name" + QByteArray::number(i));
            metaNames.push_back("n" + QByteArray::number(i));
            sorted.emplace("key" + QByteArray::number(i), i);
        }
        for (const auto &entry : sorted) {
            keys.push_back(entry.first);
            keyNumbers.push_back(entry.second);
        }
    }
};

void setField(lua_State *L, const char *key, size_t length)
{
    lua_pushlstring(L, key, length);
    lua_insert(L, -2);
    lua_rawset(L, -3);
}

void pushBytes(lua_State *L, const QByteArray &bytes)
{
    lua_pushlstring(L, bytes.constData(), size_t(bytes.size()));
}

// The Lua references: init's tables, built through the C API (exact sizes, raw sets).
void buildRowsInLua(lua_State *L, const Source &source)
{
    lua_createtable(L, RowCount, 0);
    for (int i = 1; i <= RowCount; ++i) {
        lua_createtable(L, 0, 5);
        lua_pushinteger(L, i);
        setField(L, "id", 2);
        pushBytes(L, source.names[std::size_t(i - 1)]);
        setField(L, "name", 4);
        lua_pushnumber(L, i * 0.5);
        setField(L, "score", 5);
        lua_pushboolean(L, i % 2 == 0);
        setField(L, "active", 6);
        lua_pushlstring(L, "x", 1);
        setField(L, "tag", 3);
        lua_rawseti(L, -2, i);
    }
}

void buildMapInLua(lua_State *L, const Source &source)
{
    lua_createtable(L, 0, RowCount);
    for (std::size_t k = 0; k < source.keys.size(); ++k) {
        pushBytes(L, source.keys[k]);
        lua_pushinteger(L, source.keyNumbers[k]);
        lua_rawset(L, -3);
    }
}

void buildNestedInLua(lua_State *L, const Source &source)
{
    lua_createtable(L, RowCount, 0);
    for (int i = 1; i <= RowCount; ++i) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, i);
        setField(L, "id", 2);
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, i);
        setField(L, "x", 1);
        lua_pushinteger(L, i * 2);
        setField(L, "y", 1);
        setField(L, "pos", 3);
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, "a", 1);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, "b", 1);
        lua_rawseti(L, -2, 2);
        setField(L, "tags", 4);
        lua_createtable(L, 0, 2);
        pushBytes(L, source.metaNames[std::size_t(i - 1)]);
        setField(L, "name", 4);
        lua_pushboolean(L, 1);
        setField(L, "ok", 2);
        setField(L, "meta", 4);
        lua_rawseti(L, -2, i);
    }
}

// The Qt references: the QVariant a read gives, built from C data (keys
// shared, given in order; one QString per string value) and destroyed.
QVariant stringValue(const QByteArray &bytes)
{
    return QVariant(QString::fromLatin1(bytes));
}

void buildRowsInQt(const Source &source)
{
    QVariantList rows;
    rows.reserve(RowCount);
    for (int i = 1; i <= RowCount; ++i) {
        std::map<QString, QVariant> row;
        row.emplace_hint(row.end(), source.active, QVariant(i % 2 == 0));
        row.emplace_hint(row.end(), source.id, QVariant(qlonglong(i)));
        row.emplace_hint(row.end(), source.name, stringValue(source.names[std::size_t(i - 1)]));
        row.emplace_hint(row.end(), source.score, QVariant(i * 0.5));
        row.emplace_hint(row.end(), source.tag, QVariant(source.x));
        rows.append(QVariant(QVariantMap(std::move(row))));
    }
    const QVariant value(rows);
}

void buildMapInQt(const Source &source)
{
    std::map<QString, QVariant> map;
    for (std::size_t k = 0; k < source.keys.size(); ++k)
        map.emplace_hint(map.end(), QString::fromLatin1(source.keys[k]), QVariant(qlonglong(source.keyNumbers[k])));
    const QVariant value(QVariantMap(std::move(map)));
}

void buildNestedInQt(const Source &source)
{
    QVariantList rows;
    rows.reserve(RowCount);
    for (int i = 1; i <= RowCount; ++i) {
        std::map<QString, QVariant> pos, meta, row;
        pos.emplace_hint(pos.end(), source.x, QVariant(qlonglong(i)));
        pos.emplace_hint(pos.end(), source.y, QVariant(qlonglong(i * 2)));
        meta.emplace_hint(meta.end(), source.name, stringValue(source.metaNames[std::size_t(i - 1)]));
        meta.emplace_hint(meta.end(), source.ok, QVariant(true));
        QVariantList tags;
        tags.reserve(2);
        tags.append(QVariant(source.a));
        tags.append(QVariant(source.b));
        row.emplace_hint(row.end(), source.id, QVariant(qlonglong(i)));
        row.emplace_hint(row.end(), source.meta, QVariant(QVariantMap(std::move(meta))));
        row.emplace_hint(row.end(), source.pos, QVariant(QVariantMap(std::move(pos))));
        row.emplace_hint(row.end(), source.tags, QVariant(tags));
        rows.append(QVariant(QVariantMap(std::move(row))));
    }
    const QVariant value(rows);
}

// One shape of value: the floor (a lua_next walk that counts), read, push,
// and the two references, each timed on the Lua thread, round-robin; rows
// <id>r, <id>a, <id>b, <id>c (C API build), <id>q (Qt build).
struct Shape
{
    QString id;        // "9", "9m", "9n"
    const char *global; // the value, made by init
    QString what;      // for the row names
    bool deep;         // the walk descends every level (else one level down)
    void (*buildInLua)(lua_State *, const Source &);
    void (*buildInQt)(const Source &);
};

void measure(Bench::Table &table, QIsle &isle, const Shape &shape, const Source &source)
{
    const QVariant value = isle.eval(QStringLiteral("return %1").arg(QLatin1String(shape.global)));
    auto timed = [&](auto body) {
        return isle.exec([&](lua_State *L) {
                       lua_getglobal(L, shape.global);
                       const auto start = Bench::Clock::now();
                       body(L);
                       const double us = usPerRow(start);
                       lua_settop(L, 0);
                       lua_gc(L, LUA_GCCOLLECT); // the next run starts with no garbage
                       return QVariant(us);
                   })
                .toDouble();
    };
    auto runs = Bench::roundRobin({
            [&] { return timed([&](lua_State *L) { shape.deep ? countDeep(L, -1) : countEntries(L, -1); }); },
            [&] { return timed([](lua_State *L) { QIsleValue::read(L, -1); }); },
            [&] { return timed([&](lua_State *L) { QIsleValue::push(L, value); }); },
            [&] { return timed([&](lua_State *L) { shape.buildInLua(L, source); }); },
            [&] { return timed([&](lua_State *) { shape.buildInQt(source); }); },
    });
    const QString ref = shape.id + QLatin1Char('r');
    table.add(Bench::makeRow(ref, QStringLiteral("lua_next walk counting %1 (floor)").arg(shape.what),
                             QStringLiteral("us/row"), runs[0], {}, QStringLiteral("timed on the Lua thread")));
    runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
    runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
    Row read = Bench::makeRow(shape.id + QLatin1Char('a'), QStringLiteral("Lua → QVariant: QIsleValue::read of %1").arg(shape.what),
                              QStringLiteral("us/row"), runs[1], ref,
                              QStringLiteral("result destroyed inside the timing; glibc's heap trimming off (rows 9*)"));
    Bench::judge(read, QStringLiteral("≤ 5x %1").arg(ref), read.ratio && read.ratio->median <= 5);
    table.add(read);
    Row push = Bench::makeRow(shape.id + QLatin1Char('b'), QStringLiteral("QVariant → Lua: QIsleValue::push of %1").arg(shape.what),
                              QStringLiteral("us/row"), runs[2], ref);
    Bench::judge(push, QStringLiteral("≤ 3x %1").arg(ref), push.ratio && push.ratio->median <= 3);
    table.add(push);
    runs[3].ratios = Bench::ratiosOf(runs[3], runs[0]);
    runs[4].ratios = Bench::ratiosOf(runs[4], runs[0]);
    table.add(Bench::makeRow(shape.id + QLatin1Char('c'),
                             QStringLiteral("Reference: the same table built through Lua's C API from C data (a push's floor)"),
                             QStringLiteral("us/row"), runs[3], ref,
                             QStringLiteral("lua_createtable with exact sizes, lua_pushlstring, lua_rawset")));
    table.add(Bench::makeRow(shape.id + QLatin1Char('q'),
                             QStringLiteral("Reference: the same QVariant built from C data and destroyed (a read's floor)"),
                             QStringLiteral("us/row"), runs[4], ref,
                             QStringLiteral("std::map emplace_hint, keys shared and in order, a QString per string value")));
}

// A small value, the size of a call's arguments or a record it returns:
// what one conversion costs whatever its size (rows 9sr, 9sa, 9sb).
void measureSmall(Bench::Table &table, QIsle &isle)
{
    constexpr int Reps = 20000;
    const QVariant value = isle.eval(QStringLiteral("return small"));
    auto timed = [&](auto body) {
        return isle.exec([&](lua_State *L) {
                       lua_getglobal(L, "small");
                       const auto start = Bench::Clock::now();
                       for (int i = 0; i < Reps; ++i)
                           body(L);
                       const double ns = Bench::secondsSince(start) * 1e9 / Reps;
                       lua_settop(L, 0);
                       lua_gc(L, LUA_GCCOLLECT); // a push's tables: the next run starts with no garbage
                       return QVariant(ns);
                   })
                .toDouble();
    };
    auto runs = Bench::roundRobin({
            [&] { return timed([](lua_State *L) { countDeep(L, -1); }); },
            [&] { return timed([](lua_State *L) { QIsleValue::read(L, -1); }); },
            [&] { return timed([&](lua_State *L) { QIsleValue::push(L, value); lua_pop(L, 1); }); },
    });
    const QString what = QStringLiteral("{a = {1, 2}, b = 'x'}");
    table.add(Bench::makeRow(QStringLiteral("9sr"), QStringLiteral("lua_next walk counting a small table %1 (floor)").arg(what),
                             QStringLiteral("ns"), runs[0], {}, QStringLiteral("timed on the Lua thread")));
    runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
    runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
    table.add(Bench::makeRow(QStringLiteral("9sa"), QStringLiteral("Lua → QVariant: QIsleValue::read of %1").arg(what),
                             QStringLiteral("ns"), runs[1], QStringLiteral("9sr"),
                             QStringLiteral("a call's arguments or result; result destroyed inside the timing")));
    table.add(Bench::makeRow(QStringLiteral("9sb"), QStringLiteral("QVariant → Lua: QIsleValue::push of %1").arg(what),
                             QStringLiteral("ns"), runs[2], QStringLiteral("9sr"), QStringLiteral("the table popped inside the timing")));
}

// glibc gives the top of its heap back to the system once enough of it is
// free: after each run's result is destroyed and Lua's garbage collected,
// the next run touches those pages again. On this VM those page faults made
// a nested read take up to 3x its time (1,500-2,600 faults a run), and the
// walk it is compared with allocates nothing. These rows measure
// conversion, so trimming is off. Setting it also ends glibc's sliding
// mmap threshold, which would leave every big block of Lua's (a table's
// hash part) to a fresh mmap, faulted in on each run: it is raised to
// glibc's own maximum. Neither is undone (glibc cannot go back to sliding),
// so this group runs last (main.cpp).
void turnHeapTrimmingOff()
{
#if defined(__GLIBC__)
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024); // DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
#endif
}

} // namespace

void values(Bench::Table &table)
{
    turnHeapTrimmingOff();
    auto isle = QIsle::spawn([](lua_State *L) {
        luaL_dostring(L,
                      "rows = {} for i = 1, 10000 do "
                      "rows[i] = { id = i, name = 'name' .. i, score = i * 0.5, active = i % 2 == 0, tag = 'x' } end "
                      // a map: 10,000 string keys (a row is one entry)
                      "map = {} for i = 1, 10000 do map['key' .. i] = i end "
                      // nested records: a record of records and a list per row
                      "nested = {} for i = 1, 10000 do nested[i] = { id = i, "
                      "pos = { x = i, y = i * 2 }, tags = { 'a', 'b' }, "
                      "meta = { name = 'n' .. i, ok = true } } end "
                      "small = {a = {1, 2}, b = 'x'}");
    });
    pinIsle(*isle, otherCpu());
    const Source source;
    measure(table, *isle,
            Shape{QStringLiteral("9"), "rows", QStringLiteral("a list of 10,000 rows × 5 fields"), false,
                  buildRowsInLua, buildRowsInQt},
            source);
    measure(table, *isle,
            Shape{QStringLiteral("9m"), "map", QStringLiteral("a map of 10,000 string keys"), false, buildMapInLua,
                  buildMapInQt},
            source);
    measure(table, *isle,
            Shape{QStringLiteral("9n"), "nested",
                  QStringLiteral("10,000 nested records (a record, a list and a record inside each)"), true,
                  buildNestedInLua, buildNestedInQt},
            source);
    measureSmall(table, *isle);
    isle->shutdown();
}

} // namespace Rows
