// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// qisle-bench: every row of the benchmark issue measured side by side in one
// run, printed as one Markdown table (and, with --json FILE, as JSON).
// It reports and never asserts: a slow machine gives slow numbers, not a
// failure. See BENCHMARKS.md for the latest table.
#include "harness.h"
#include "rows.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QFile>

#include <QIsle/QIsleError>

#include <cstdio>
#include <functional>

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("QIsle's benchmark: one Markdown table on stdout."));
    parser.addHelpOption();
    const QCommandLineOption quick(QStringLiteral("quick"), QStringLiteral("Fewer, shorter runs (under a minute)."));
    const QCommandLineOption json(QStringLiteral("json"), QStringLiteral("Also write the numbers to <file>."),
                                  QStringLiteral("file"));
    const QCommandLineOption only(QStringLiteral("rows"),
                                  QStringLiteral("Only these row groups, e.g. calls,costs,heartbeat,values,memory."),
                                  QStringLiteral("groups"));
    parser.addOptions({quick, json, only});
    parser.process(app);

    Bench::Settings &settings = Bench::settings();
    if (parser.isSet(quick)) {
        settings.quick = true;
        settings.pairs = 5;
        settings.budget = 0.8;
    }

    const struct
    {
        const char *name;
        std::function<void(Bench::Table &)> run;
    } groups[] = {
        {"calls", Rows::calls},         {"costs", Rows::isleCosts}, {"heartbeat", Rows::heartbeat},
        {"memory", Rows::memory},
        {"objects", Rows::objects},
        {"pool", Rows::pool},
        {"async", Rows::async},
        {"values", Rows::values}, // last: it turns glibc's heap trimming off for good
    };
    const QStringList wanted = parser.value(only).split(QLatin1Char(','), Qt::SkipEmptyParts);

    const QVariantMap machine = Bench::machineInfo();
    const auto start = Bench::Clock::now();
    Bench::Table table;
    for (const auto &group : groups) {
        const QString name = QString::fromLatin1(group.name);
        if (!wanted.isEmpty() && !wanted.contains(name))
            continue;
        std::fprintf(stderr, "qisle-bench: %s ...\n", group.name);
        // A failing group is reported in the table; the others still run.
        try {
            group.run(table);
        } catch (const QIsleError &e) {
            table.addUnavailable(name, QStringLiteral("group '%1'").arg(name),
                                 QStringLiteral("failed: %1").arg(QString::fromUtf8(e.what())));
        } catch (const std::exception &e) {
            table.addUnavailable(name, QStringLiteral("group '%1'").arg(name),
                                 QStringLiteral("failed: %1").arg(QString::fromLocal8Bit(e.what())));
        }
        Bench::pinCurrentThread(-1);
    }
    const double seconds = Bench::secondsSince(start);
    const QString loadAfter = Bench::machineInfo().value(QStringLiteral("loadavg")).toString();

    QString out;
    out += QStringLiteral("QIsle benchmark%1 — %2 (%3 CPUs), %4, kernel %5, Qt %6, %7, %8; %9 s; load average %10 before, %11 after\n\n")
                   .arg(settings.quick ? QStringLiteral(" (--quick)") : QString(),
                        machine.value(QStringLiteral("cpu")).toString(),
                        machine.value(QStringLiteral("cpus")).toString(),
                        machine.value(QStringLiteral("os")).toString(),
                        machine.value(QStringLiteral("kernel")).toString(),
                        machine.value(QStringLiteral("qt")).toString(),
                        machine.value(QStringLiteral("lua")).toString(),
                        machine.value(QStringLiteral("compiler")).toString())
                   .arg(seconds, 0, 'f', 1)
                   .arg(machine.value(QStringLiteral("loadavg")).toString(), loadAfter);
    out += table.markdown();
    out += QStringLiteral("\nRatio: this row ÷ the Ref row, the median of per-pair ratios from alternating runs "
                          "(for calls/s, higher is faster).\n");
    std::fputs(out.toUtf8().constData(), stdout);
    std::fflush(stdout);

    if (parser.isSet(json)) {
        QVariantMap m = machine;
        m.insert(QStringLiteral("seconds"), seconds);
        m.insert(QStringLiteral("loadavgAfter"), loadAfter);
        QFile file(parser.value(json));
        if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate)
            || file.write(table.json(m)) < 0) {
            std::fprintf(stderr, "qisle-bench: cannot write %s\n", qPrintable(parser.value(json)));
            return 0; // report, don't fail: the table is on stdout
        }
    }
    return 0;
}
