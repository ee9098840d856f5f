// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 10: what the memory limit's allocator costs on an allocation-heavy
// script, and how precisely a request's timeout ends it.
#include "rows.h"

#include <QIsle/QIsle>

#include <QIsle/QIsleLua>

namespace Rows {
namespace {

using Bench::Measured;
using Bench::Row;

// Builds and drops 1M small tables and strings (--quick: 250k).
QByteArray churnChunk()
{
    const QByteArray n = Bench::settings().quick ? "250000" : "1000000";
    return "for i = 1, " + n + " do local t = { i, i + 1, name = 'k' .. i } end return true";
}

void allocator(Bench::Table &table)
{
    lua_State *L = luaL_newstate(); // Lua's default allocator
    luaL_openlibs(L);
    QIsleOptions limited;
    limited.memoryLimit = qsizetype(1) << 30;
    auto withLimit = QIsle::spawn({}, limited);
    auto withoutLimit = QIsle::spawn();
    // One CPU for all three: the CPUs of this VM may run at different speeds.
    pinIsle(*withLimit, callerCpu());
    pinIsle(*withoutLimit, callerCpu());
    Bench::pinCurrentThread(callerCpu());
    const QByteArray churnUtf8 = churnChunk();
    const char *const Churn = churnUtf8.constData();
    const QString churn = QString::fromLatin1(churnUtf8);
    auto timeIsle = [&](QIsle &isle) {
        const auto start = Bench::Clock::now();
        isle.eval(churn);
        return Bench::secondsSince(start) * 1e3;
    };
    auto runs = Bench::roundRobin({
            [&] {
                const auto start = Bench::Clock::now();
                luaL_dostring(L, Churn);
                const double ms = Bench::secondsSince(start) * 1e3;
                lua_settop(L, 0);
                return ms;
            },
            [&] { return timeIsle(*withoutLimit); },
            [&] { return timeIsle(*withLimit); },
    }, 2.0);
    Bench::pinCurrentThread(-1);
    withLimit->shutdown();
    withoutLimit->shutdown();
    lua_close(L);

    const QString cpu = QStringLiteral("all on CPU %1").arg(callerCpu());
    table.add(Bench::makeRow(QStringLiteral("10r"),
                             QStringLiteral("Alloc churn (%1 tables + strings), luaL_newstate, calling thread")
                                     .arg(Bench::settings().quick ? QStringLiteral("250k") : QStringLiteral("1M")),
                             QStringLiteral("ms"), runs[0], {}, cpu));
    Measured noLimit = runs[1];
    noLimit.ratios = Bench::ratiosOf(runs[1], runs[0]);
    table.add(Bench::makeRow(QStringLiteral("10n"), QStringLiteral("… QIsle eval, no memoryLimit"),
                             QStringLiteral("ms"), noLimit, QStringLiteral("10r"),
                             QStringLiteral("includes the hook and QIsle's counting allocator")));
    Measured vsPlain = runs[2];
    vsPlain.ratios = Bench::ratiosOf(runs[2], runs[0]);
    Row a = Bench::makeRow(QStringLiteral("10a"), QStringLiteral("… QIsle eval, memoryLimit 1 GiB, vs plain"),
                           QStringLiteral("ms"), vsPlain, QStringLiteral("10r"));
    Bench::judge(a, QStringLiteral("≤ 1.05x 10r"), a.ratio && a.ratio->median <= 1.05);
    table.add(a);
    Measured vsNoLimit = runs[2];
    vsNoLimit.ratios = Bench::ratiosOf(runs[2], runs[1]);
    Row b = Bench::makeRow(QStringLiteral("10b"), QStringLiteral("… QIsle eval, memoryLimit 1 GiB, vs no limit"),
                           QStringLiteral("ms"), vsNoLimit, QStringLiteral("10n"));
    Bench::judge(b, QStringLiteral("≤ 1.05x 10n"), b.ratio && b.ratio->median <= 1.05);
    table.add(b);
}

void timeoutPrecision(Bench::Table &table)
{
    QIsleOptions options;
    options.timeout = std::chrono::milliseconds(200);
    auto isle = QIsle::spawn({}, options);
    pinIsle(*isle, otherCpu());
    Measured ends = Bench::repeated(Bench::settings().scale(11, 3), [&] {
        const auto start = Bench::Clock::now();
        QFuture<QVariant> f = isle->spawnEval(QStringLiteral("while true do end"));
        if (!Bench::pollFinished(f, 5))
            f.cancel(); // a timeout that never comes shows as 5 s
        const double ms = Bench::secondsSince(start) * 1e3;
        try {
            f.waitForFinished();
        } catch (const QIsleError &) {
            // Kind::Timeout: expected
        }
        return ms;
    }, 2.0);
    isle->shutdown();
    Row row = Bench::makeRow(QStringLiteral("10t"),
                             QStringLiteral("Timeout 200 ms on `while true do end`: spawnEval → finished"),
                             QStringLiteral("ms"), ends);
    Bench::judge(row, QStringLiteral("200–210 ms"), row.stats.median >= 200 && row.stats.median <= 210);
    table.add(row);
}

} // namespace

void memory(Bench::Table &table)
{
    allocator(table);
    timeoutPrecision(table);
}

} // namespace Rows
