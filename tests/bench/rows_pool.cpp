// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 11: QIslePool -- CPU-bound throughput of two isles against one, what
// the pool's dispatch adds to a tiny request, and leases per second.
#include "rows.h"

#include <QIsle/QIsle>
#include <QIsle/QIslePool>

#include <QIsle/QIsleLua>

#include <vector>

namespace Rows {
namespace {

using Bench::Measured;
using Bench::Row;

// One CPU-bound request: a few milliseconds of Lua arithmetic.
const QString CpuChunk = QStringLiteral("local s = 0 for i = 1, 300000 do s = s + i % 7 end return s");

std::unique_ptr<QIsle> addIsle()
{
    return QIsle::spawn([](lua_State *L) { luaL_dostring(L, "function add(a, b) return a + b end"); });
}

std::unique_ptr<QIslePool> addPool(int size)
{
    QIslePoolOptions options;
    options.size = size;
    return QIslePool::spawn([](lua_State *L) { luaL_dostring(L, "function add(a, b) return a + b end"); }, options);
}

// Pins every isle of an idle pool (each one leased in turn).
void pinPool(QIslePool &pool, int cpu)
{
    std::vector<QIsleLease> leases;
    for (int i = 0; i < pool.size(); ++i) {
        leases.push_back(pool.checkout());
        pinIsle(*leases.back().isle(), cpu);
    }
}

// Requests per second for `count` CPU-bound requests submitted at once,
// then all waited for; 0 when a result is wrong.
template<typename Submit>
double cpuRate(int count, Submit submit)
{
    std::vector<QFuture<QVariant>> futures;
    futures.reserve(std::size_t(count));
    const auto start = Bench::Clock::now();
    for (int i = 0; i < count; ++i)
        futures.push_back(submit());
    for (QFuture<QVariant> &f : futures)
        f.waitForFinished();
    const double seconds = Bench::secondsSince(start);
    for (const QFuture<QVariant> &f : futures) {
        if (f.isCanceled() || f.resultCount() == 0 || !f.result().isValid())
            return 0;
    }
    return count / seconds;
}

template<typename Call>
double roundTripUs(int count, Call call)
{
    for (int i = 0; i < 20; ++i)
        call();
    const auto start = Bench::Clock::now();
    for (int i = 0; i < count; ++i) {
        if (call() != QVariant(qlonglong(3)))
            return -1;
    }
    return Bench::secondsSince(start) * 1e6 / count;
}

template<typename Submit>
double pipelinedRate(int count, Submit submit)
{
    std::vector<QFuture<QVariant>> futures;
    futures.reserve(std::size_t(count));
    const auto start = Bench::Clock::now();
    for (int i = 0; i < count; ++i)
        futures.push_back(submit());
    for (QFuture<QVariant> &f : futures)
        f.waitForFinished();
    const double seconds = Bench::secondsSince(start);
    const QFuture<QVariant> &last = futures.back();
    if (last.isCanceled() || last.resultCount() == 0 || last.result() != QVariant(qlonglong(3)))
        return 0;
    return count / seconds;
}

} // namespace

void pool(Bench::Table &table)
{
    const Bench::Settings &s = Bench::settings();
    const QString apart = QStringLiteral("caller on CPU %1, isles on CPU %2").arg(callerCpu()).arg(otherCpu());

    // 11a: throughput of CPU-bound requests, two isles against one, and
    // against two plain QIsles the requests alternate between (what the
    // machine gives two Lua threads, whatever the pool does). Nothing
    // pinned: each Lua thread may take a CPU of its own.
    {
        const int count = s.scale(120, 40);
        auto isle = QIsle::spawn();
        auto other = QIsle::spawn();
        auto pool2 = QIslePool::spawn({}, [] {
            QIslePoolOptions o;
            o.size = 2;
            return o;
        }());
        int turn = 0;
        std::vector<Measured> runs = Bench::roundRobin(
                {[&] { return cpuRate(count, [&] { return isle->spawnEval(CpuChunk); }); },
                 [&] { return cpuRate(count, [&] { return (turn++ % 2 ? other : isle)->spawnEval(CpuChunk); }); },
                 [&] { return cpuRate(count, [&] { return pool2->spawnEval(CpuChunk); }); }},
                3.0);
        runs[1].ratios = Bench::ratiosOf(runs[1], runs[0]);
        runs[2].ratios = Bench::ratiosOf(runs[2], runs[0]);
        const QString work = QStringLiteral("%1 requests of 3e5 Lua loop steps, submitted at once; %2 CPUs, unpinned")
                                     .arg(count)
                                     .arg(Bench::cpuCount());
        table.add(Bench::makeRow(QStringLiteral("11r"), QStringLiteral("One QIsle: CPU-bound spawnEval throughput"),
                                 QStringLiteral("requests/s"), runs[0], {}, work));
        table.add(Bench::makeRow(QStringLiteral("11q"),
                                 QStringLiteral("Two QIsles, requests alternated by hand: CPU-bound throughput"),
                                 QStringLiteral("requests/s"), runs[1], QStringLiteral("11r"),
                                 work + QStringLiteral("; what two Lua threads get here")));
        // Beside the two hand-driven isles of the same rounds: what the pool
        // itself costs, whatever the machine gives two Lua threads (on a
        // loaded machine 11q and 11a fall short of 1.8x together).
        const Bench::Stats vsHand = Bench::statsOf(Bench::ratiosOf(runs[2], runs[1]));
        Row r = Bench::makeRow(QStringLiteral("11a"), QStringLiteral("QIslePool of 2: CPU-bound spawnEval throughput"),
                               QStringLiteral("requests/s"), runs[2], QStringLiteral("11r"),
                               work + QStringLiteral("; %1x 11q (%2–%3)")
                                              .arg(vsHand.median, 0, 'f', 2)
                                              .arg(vsHand.p10, 0, 'f', 2)
                                              .arg(vsHand.p90, 0, 'f', 2));
        if (Bench::cpuCount() >= 2)
            Bench::judge(r, QStringLiteral("≥ 1.8x 11r"), r.ratio && r.ratio->median >= 1.8);
        else
            r.note += QStringLiteral("; one CPU: no target");
        table.add(r);
    }

    auto isle = addIsle();
    auto pool2 = addPool(2);
    pinIsle(*isle, otherCpu());
    pinPool(*pool2, otherCpu());

    // 11b: one tiny blocking request, through the pool against one isle.
    {
        const int trips = s.scale(600, 200);
        auto [direct, viaPool] = Bench::paired(
                [&] {
                    Bench::pinCurrentThread(callerCpu());
                    return roundTripUs(trips, [&] { return isle->call(QStringLiteral("add"), {1, 2}); });
                },
                [&] {
                    Bench::pinCurrentThread(callerCpu());
                    return roundTripUs(trips, [&] { return pool2->call(QStringLiteral("add"), {1, 2}); });
                });
        Bench::pinCurrentThread(-1);
        table.add(Bench::makeRow(QStringLiteral("11s"), QStringLiteral("One QIsle: call(\"add\", {1, 2}) round trip"),
                                 QStringLiteral("us"), direct, {}, apart));
        Row r = Bench::makeRow(QStringLiteral("11b"),
                               QStringLiteral("QIslePool of 2: call(\"add\", {1, 2}) round trip"),
                               QStringLiteral("us"), viaPool, QStringLiteral("11s"), apart);
        Bench::judge(r, QStringLiteral("≤ 1.1x 11s"), r.ratio && r.ratio->median <= 1.1);
        table.add(r);
    }

    // 11c: tiny requests pipelined through a pool of one isle (dispatch only,
    // no second isle to help) against the isle itself.
    {
        const int pipelined = s.scale(50000, 10000);
        auto pool1 = addPool(1);
        pinPool(*pool1, otherCpu());
        auto [direct, viaPool] = Bench::paired(
                [&] {
                    Bench::pinCurrentThread(callerCpu());
                    return pipelinedRate(pipelined, [&] { return isle->spawnCall(QStringLiteral("add"), {1, 2}); });
                },
                [&] {
                    Bench::pinCurrentThread(callerCpu());
                    return pipelinedRate(pipelined, [&] { return pool1->spawnCall(QStringLiteral("add"), {1, 2}); });
                },
                2.0);
        Bench::pinCurrentThread(-1);
        table.add(Bench::makeRow(QStringLiteral("11t"),
                                 QStringLiteral("One QIsle: %1 pipelined spawnCall, then wait for all").arg(pipelined),
                                 QStringLiteral("calls/s"), direct, {}, apart));
        Row r = Bench::makeRow(QStringLiteral("11c"),
                               QStringLiteral("QIslePool of 1: %1 pipelined spawnCall, then wait for all").arg(pipelined),
                               QStringLiteral("calls/s"), viaPool, QStringLiteral("11t"),
                               apart + QStringLiteral("; target: per-request cost ≤ 1.1x"));
        Bench::judge(r, QStringLiteral("≥ 0.91x 11t"), r.ratio && r.ratio->median >= 1 / 1.1);
        table.add(r);
    }

    // 11d: leases per second, one thread, nothing contended.
    {
        const int pairs = s.scale(200000, 40000);
        Measured rate = Bench::repeated(s.pairs, [&] {
            Bench::pinCurrentThread(callerCpu());
            const auto start = Bench::Clock::now();
            for (int i = 0; i < pairs; ++i) {
                QIsleLease lease = pool2->tryCheckout();
                if (!lease)
                    return 0.0;
            }
            return pairs / Bench::secondsSince(start);
        });
        Bench::pinCurrentThread(-1);
        table.add(Bench::makeRow(QStringLiteral("11d"), QStringLiteral("QIslePool of 2: tryCheckout() + release pairs"),
                                 QStringLiteral("pairs/s"), rate, {}, QStringLiteral("one thread, uncontended")));
    }
}

} // namespace Rows
