// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// The benchmark's harness: repeated samples, paired A/B ratios, CPU pinning,
// and the one table (Markdown, and JSON) every row ends up in.

#include <QtCore/QFuture>
#include <QtCore/QString>
#include <QtCore/QStringList>
#include <QtCore/QVariant>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

namespace Bench {

using Clock = std::chrono::steady_clock;

inline double secondsSince(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// How hard to try. --quick must finish everything well under a minute, even
// on a slow, shared machine: every loop also stops at its time budget.
struct Settings
{
    bool quick = false;
    int pairs = 21;           // A/B pairs per comparison
    double budget = 6.0;      // seconds one comparison may take (at least 3 pairs run)
    int scale(int full, int quickValue) const { return quick ? quickValue : full; }
};
Settings &settings();

// Median, p10 and p90 of samples (nearest rank), min and max.
struct Stats
{
    double median = 0, p10 = 0, p90 = 0, min = 0, max = 0;
    int count = 0;
};
Stats statsOf(std::vector<double> samples);

// A sampled quantity: samples of its own, and (when it is compared) the
// per-pair ratios to its reference.
struct Measured
{
    std::vector<double> samples;
    std::vector<double> ratios; // this / reference, one per A/B pair
};

// Runs A and B alternately (A, B, A, B, ...) `settings().pairs` times or until
// the budget runs out (but at least 3 pairs); each returns one sample.
// Returns {A, B}, B carrying the per-pair ratios B/A.
std::pair<Measured, Measured> paired(const std::function<double()> &a, const std::function<double()> &b,
                                     double budgetScale = 1.0);
// Any number of alternatives, run round-robin; ratios are left empty.
std::vector<Measured> roundRobin(const std::vector<std::function<double()>> &runs, double budgetScale = 1.0);
std::vector<double> ratiosOf(const Measured &num, const Measured &den);
// Samples of one quantity alone, `count` times or until the budget runs out.
Measured repeated(int count, const std::function<double()> &run, double budgetScale = 1.0);

// Polls (spinning, yielding) until f finished or `seconds` passed; returns
// whether it finished. Bounds every wait, so a broken stop cannot hang the
// benchmark, and times the future's finish rather than a waiter's wake-up.
bool pollFinished(const QFuture<QVariant> &f, double seconds);

// Pins the calling thread to cpu (or to every CPU for -1). Returns false if
// the machine has no such CPU.
bool pinCurrentThread(int cpu);
int cpuCount();

enum class Verdict { None, Met, NotMet, NotApplicable };

struct Row
{
    QString id;           // "3a"
    QString name;         // what was measured
    QString unit;         // "us/call", "calls/s", ...
    Stats stats;
    QString reference;    // id of the reference row ("" = none)
    std::optional<Stats> ratio; // this / reference, from paired runs
    QString target;       // readable target, "" = none
    Verdict verdict = Verdict::None;
    QString note;         // "n/a (needs X)", pinning, ...
};

class Table
{
public:
    void add(Row row);
    // A row that could not be measured: its reason stands in the note.
    void addUnavailable(const QString &id, const QString &name, const QString &why,
                        const QString &target = {});
    const std::vector<Row> &rows() const { return m_rows; }
    QString markdown() const;
    QByteArray json(const QVariantMap &machine) const;

private:
    std::vector<Row> m_rows;
};

Row makeRow(const QString &id, const QString &name, const QString &unit, const Measured &m,
            const QString &reference = {}, const QString &note = {});
// Met when check(value) holds; value is the median or the median ratio.
void judge(Row &row, const QString &target, bool met);

// Machine facts for the table's header and the JSON.
QVariantMap machineInfo();

} // namespace Bench
