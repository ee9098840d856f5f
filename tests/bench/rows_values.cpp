// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 9: the value bridge on a table-shaped result, timed on the Lua thread
// (inside exec), beside a lua_next walk that only counts: the floor.
#include "rows.h"

#include <QIsle/QIsle>

#include <QIsle/QIsleLua>

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

// One shape of value: the floor (a lua_next walk that counts), read, push,
// each timed on the Lua thread, round-robin; rows <id>r, <id>a, <id>b.
struct Shape
{
    QString id;        // "9", "9m", "9n"
    const char *global; // the value, made by init
    QString what;      // for the row names
    bool deep;         // the walk descends every level (else one level down)
};

void measure(Bench::Table &table, QIsle &isle, const Shape &shape)
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
    });
    const QString ref = shape.id + QLatin1Char('r');
    table.add(Bench::makeRow(ref, QStringLiteral("lua_next walk counting %1 (floor)").arg(shape.what),
                             QStringLiteral("us/row"), runs[0], {}, QStringLiteral("timed on the Lua thread")));
    runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
    runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
    Row read = Bench::makeRow(shape.id + QLatin1Char('a'), QStringLiteral("Lua → QVariant: QIsleValue::read of %1").arg(shape.what),
                              QStringLiteral("us/row"), runs[1], ref, QStringLiteral("result destroyed inside the timing"));
    Bench::judge(read, QStringLiteral("≤ 5x %1").arg(ref), read.ratio && read.ratio->median <= 5);
    table.add(read);
    Row push = Bench::makeRow(shape.id + QLatin1Char('b'), QStringLiteral("QVariant → Lua: QIsleValue::push of %1").arg(shape.what),
                              QStringLiteral("us/row"), runs[2], ref);
    Bench::judge(push, QStringLiteral("≤ 3x %1").arg(ref), push.ratio && push.ratio->median <= 3);
    table.add(push);
}

} // namespace

void values(Bench::Table &table)
{
    auto isle = QIsle::spawn([](lua_State *L) {
        luaL_dostring(L,
                      "rows = {} for i = 1, 10000 do "
                      "rows[i] = { id = i, name = 'name' .. i, score = i * 0.5, active = i % 2 == 0, tag = 'x' } end "
                      // a map: 10,000 string keys (a row is one entry)
                      "map = {} for i = 1, 10000 do map['key' .. i] = i end "
                      // nested records: a record of records and a list per row
                      "nested = {} for i = 1, 10000 do nested[i] = { id = i, "
                      "pos = { x = i, y = i * 2 }, tags = { 'a', 'b' }, "
                      "meta = { name = 'n' .. i, ok = true } } end");
    });
    pinIsle(*isle, otherCpu());
    measure(table, *isle, Shape{QStringLiteral("9"), "rows", QStringLiteral("a list of 10,000 rows × 5 fields"), false});
    measure(table, *isle, Shape{QStringLiteral("9m"), "map", QStringLiteral("a map of 10,000 string keys"), false});
    measure(table, *isle, Shape{QStringLiteral("9n"), "nested",
                                QStringLiteral("10,000 nested records (a record, a list and a record inside each)"), true});
    isle->shutdown();
}

} // namespace Rows
