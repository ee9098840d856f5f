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

double usPerRow(Bench::Clock::time_point start)
{
    return Bench::secondsSince(start) * 1e6 / RowCount;
}

} // namespace

void values(Bench::Table &table)
{
    auto isle = QIsle::spawn([](lua_State *L) {
        luaL_dostring(L,
                      "rows = {} for i = 1, 10000 do "
                      "rows[i] = { id = i, name = 'name' .. i, score = i * 0.5, active = i % 2 == 0, tag = 'x' } end");
    });
    pinIsle(*isle, otherCpu());
    QVariant list = isle->eval(QStringLiteral("return rows"));

    auto timed = [&](auto body) {
        return isle->exec([&](lua_State *L) {
                       lua_getglobal(L, "rows");
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
            [&] { return timed([](lua_State *L) { countEntries(L, -1); }); },
            [&] { return timed([](lua_State *L) { QIsleValue::read(L, -1); }); },
            [&] { return timed([&](lua_State *L) { QIsleValue::push(L, list); }); },
    });
    isle->shutdown();

    table.add(Bench::makeRow(QStringLiteral("9r"), QStringLiteral("lua_next walk counting 10,000 rows × 5 fields (floor)"),
                             QStringLiteral("us/row"), runs[0], {}, QStringLiteral("timed on the Lua thread")));
    runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
    runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
    Row read = Bench::makeRow(QStringLiteral("9a"), QStringLiteral("Lua → QVariant: QIsleValue::read of the list"),
                              QStringLiteral("us/row"), runs[1], QStringLiteral("9r"));
    Bench::judge(read, QStringLiteral("≤ 5x 9r"), read.ratio && read.ratio->median <= 5);
    table.add(read);
    Row push = Bench::makeRow(QStringLiteral("9b"), QStringLiteral("QVariant → Lua: QIsleValue::push of the list"),
                              QStringLiteral("us/row"), runs[2], QStringLiteral("9r"));
    Bench::judge(push, QStringLiteral("≤ 5x 9r"), push.ratio && push.ratio->median <= 5);
    table.add(push);
}

} // namespace Rows
