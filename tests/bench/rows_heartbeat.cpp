// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// Row 8: does the main thread stay responsive while an isle works? A 1 ms
// timer on the main thread's event loop, and the longest gap between ticks.
#include "rows.h"

#include <QIsle/QIsle>

#include <QtCore/QElapsedTimer>
#include <QtCore/QEventLoop>
#include <QtCore/QFutureWatcher>
#include <QtCore/QTimer>

#include <functional>

namespace Rows {
namespace {

using Bench::Measured;
using Bench::Row;

// Runs the main thread's event loop while `start` works (or for `window` ms
// when it returns an empty future), and returns the worst gap between two
// ticks of a 1 ms timer, in ms. A job still running after `limit` ms is
// canceled.
double worstGapMs(int window, int limit, const std::function<QFuture<QVariant>(QFutureWatcher<QVariant> &)> &start)
{
    QEventLoop loop;
    QTimer heartbeat;
    heartbeat.setTimerType(Qt::PreciseTimer);
    heartbeat.setInterval(1);
    QElapsedTimer clock;
    qint64 last = -1;
    qint64 worst = 0;
    QObject::connect(&heartbeat, &QTimer::timeout, &loop, [&] {
        const qint64 now = clock.nsecsElapsed();
        if (last >= 0)
            worst = std::max(worst, now - last);
        last = now;
    });
    QFutureWatcher<QVariant> watcher;
    QObject::connect(&watcher, &QFutureWatcher<QVariant>::finished, &loop, &QEventLoop::quit);
    clock.start();
    heartbeat.start();
    QFuture<QVariant> job = start(watcher);
    if (job.isValid()) {
        watcher.setFuture(job);
        QTimer::singleShot(limit, &loop, [&] { job.cancel(); });
        QTimer::singleShot(limit + 5000, &loop, &QEventLoop::quit); // a stop that never comes

    } else {
        QTimer::singleShot(window, &loop, &QEventLoop::quit);
    }
    loop.exec();
    heartbeat.stop();
    return double(worst) / 1e6;
}

} // namespace

void heartbeat(Bench::Table &table)
{
    const Bench::Settings &s = Bench::settings();
    const int window = s.scale(500, 200);
    Bench::pinCurrentThread(-1);
    auto isle = QIsle::spawn();
    pinIsle(*isle, -1); // threads unpinned: as an application runs

    // Signals the watcher delivered: Qt batches results and throttles progress.
    qint64 resultSignals = 0;
    qint64 progressSignals = 0;
    auto idle = [&] { return worstGapMs(window, 0, [](auto &) { return QFuture<QVariant>(); }); };
    auto cpuBound = [&] {
        return worstGapMs(window, window, [&](auto &) { return isle->spawnEval(QStringLiteral("while true do end")); });
    };
    auto emits = [&] {
        return worstGapMs(window, 20000, [&](QFutureWatcher<QVariant> &w) {
            QObject::connect(&w, &QFutureWatcher<QVariant>::resultReadyAt, &w, [&](int) { ++resultSignals; });
            return isle->spawnEval(QStringLiteral("for i = 1, 100000 do isle.emit(i) end return true"));
        });
    };
    qint64 printedLines = 0;
    QObject::connect(isle.get(), &QIsle::printed, isle.get(), [&](const QString &) { ++printedLines; });
    auto prints = [&] {
        return worstGapMs(window, 20000, [&](QFutureWatcher<QVariant> &) {
            return isle->spawnEval(QStringLiteral("for i = 1, 100000 do print(i) end return true"));
        });
    };
    auto progress = [&] {
        return worstGapMs(window, 20000, [&](QFutureWatcher<QVariant> &w) {
            QObject::connect(&w, &QFutureWatcher<QVariant>::progressValueChanged, &w, [&](int) { ++progressSignals; });
            return isle->spawnEval(QStringLiteral("for i = 1, 1000000 do isle.progress(i, 1000000) end return true"));
        });
    };
    // Rounds of idle, a, b, c: each run's gap is compared to the idle gap
    // measured just before it.
    auto runs = Bench::roundRobin({idle, cpuBound, emits, prints, progress}, 2.0);

    // The emitting script's own time, beside the same loop calling a C
    // function that does nothing (no watcher: the script alone).
    auto scriptMs = [&](const QString &chunk) {
        const auto start = Bench::Clock::now();
        QIsle::waitFor(isle->spawnEval(chunk));
        return Bench::secondsSince(start) * 1e3;
    };
    auto [loopTime, emitTime] = Bench::paired(
            [&] { return scriptMs(QStringLiteral("local s = select for i = 1, 100000 do s('#', i) end return true")); },
            [&] { return scriptMs(QStringLiteral("for i = 1, 100000 do isle.emit(i) end return true")); });
    isle->shutdown();

    const Measured &idleGap = runs[0];
    table.add(Bench::makeRow(QStringLiteral("8r"), QStringLiteral("Main-thread 1 ms timer, worst gap, no isle working"),
                             QStringLiteral("ms"), idleGap, {}, QStringLiteral("%1 ms window; threads unpinned").arg(window)));
    const QString names[] = {
        QStringLiteral("… while the isle runs `while true do end`"),
        QStringLiteral("… while a script emits 100k results (QFutureWatcher on the main thread)"),
        QStringLiteral("… while a script prints 100k lines (QIsle::printed connected on the main thread)"),
        QStringLiteral("… while a script calls isle.progress 1M times (watched)"),
    };
    const QString ids[] = {QStringLiteral("8a"), QStringLiteral("8b"), QStringLiteral("8b2"), QStringLiteral("8c")};
    const qint64 rounds = qMax<qint64>(1, qint64(runs[0].samples.size()));
    const QString notes[] = {
        {},
        QStringLiteral("%1 resultReadyAt signals a run").arg(resultSignals / rounds),
        QStringLiteral("%1 printed signals a run").arg(printedLines / rounds),
        QStringLiteral("%1 progressValueChanged signals a run").arg(progressSignals / rounds),
    };
    const double idleMedian = Bench::statsOf(idleGap.samples).median;
    for (int i = 0; i < 4; ++i) {
        Measured m = runs[std::size_t(i) + 1];
        m.ratios = Bench::ratiosOf(m, idleGap);
        Row row = Bench::makeRow(ids[i], names[i], QStringLiteral("ms"), m, QStringLiteral("8r"), notes[i]);
        Bench::judge(row, QStringLiteral("≤ 2x 8r + 2 ms"), row.stats.median <= 2 * idleMedian + 2);
        table.add(row);
    }

    table.add(Bench::makeRow(QStringLiteral("8sr"),
                             QStringLiteral("Script's own time: 100k calls of a C function that does nothing (select)"),
                             QStringLiteral("ms"), loopTime, {}, QStringLiteral("spawnEval → finished, no watcher")));
    Row emitRow = Bench::makeRow(QStringLiteral("8s"), QStringLiteral("Script's own time: 100k isle.emit(i)"),
                                 QStringLiteral("ms"), emitTime, QStringLiteral("8sr"),
                                 QStringLiteral("spawnEval → finished, no watcher"));
    table.add(emitRow);
}

} // namespace Rows
