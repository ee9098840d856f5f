// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "harness.h"

#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QRegularExpression>
#include <QtCore/QSysInfo>
#include <QtCore/QVariant>

#include <QIsle/QIsleLua>

#include <algorithm>
#include <cmath>

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace Bench {

Settings &settings()
{
    static Settings s;
    return s;
}

Stats statsOf(std::vector<double> samples)
{
    Stats s;
    if (samples.empty())
        return s;
    std::sort(samples.begin(), samples.end());
    const auto rank = [&](double q) {
        const auto i = std::size_t(std::lround(q * double(samples.size() - 1)));
        return samples[std::min(i, samples.size() - 1)];
    };
    s.count = int(samples.size());
    s.min = samples.front();
    s.max = samples.back();
    s.p10 = rank(0.10);
    s.p90 = rank(0.90);
    const std::size_t n = samples.size();
    s.median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    return s;
}

std::vector<double> ratiosOf(const Measured &num, const Measured &den)
{
    std::vector<double> r;
    const std::size_t n = std::min(num.samples.size(), den.samples.size());
    for (std::size_t i = 0; i < n; ++i)
        r.push_back(den.samples[i] != 0 ? num.samples[i] / den.samples[i] : 0);
    return r;
}

std::vector<Measured> roundRobin(const std::vector<std::function<double()>> &runs, double budgetScale)
{
    std::vector<Measured> out(runs.size());
    const Settings &s = settings();
    const auto start = Clock::now();
    for (int round = 0; round < s.pairs; ++round) {
        if (round >= 3 && secondsSince(start) > s.budget * budgetScale)
            break;
        for (std::size_t i = 0; i < runs.size(); ++i)
            out[i].samples.push_back(runs[i]());
    }
    return out;
}

std::pair<Measured, Measured> paired(const std::function<double()> &a, const std::function<double()> &b,
                                     double budgetScale)
{
    auto both = roundRobin({a, b}, budgetScale);
    both[1].ratios = ratiosOf(both[1], both[0]);
    return {both[0], both[1]};
}

Measured repeated(int count, const std::function<double()> &run, double budgetScale)
{
    Measured m;
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
        if (i >= 3 && secondsSince(start) > settings().budget * budgetScale)
            break;
        m.samples.push_back(run());
    }
    return m;
}

bool pollFinished(const QFuture<QVariant> &f, double seconds)
{
    const auto start = Clock::now();
    while (!f.isFinished()) {
        if (secondsSince(start) > seconds)
            return false;
        sched_yield();
    }
    return true;
}

int cpuCount()
{
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? int(n) : 1;
}

bool pinCurrentThread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        for (int i = 0; i < cpuCount(); ++i)
            CPU_SET(i, &set);
    } else {
        if (cpu >= cpuCount())
            return false;
        CPU_SET(cpu, &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

void Table::add(Row row)
{
    m_rows.push_back(std::move(row));
}

void Table::addUnavailable(const QString &id, const QString &name, const QString &why, const QString &target)
{
    Row row;
    row.id = id;
    row.name = name;
    row.target = target;
    row.verdict = Verdict::NotApplicable;
    row.note = QStringLiteral("n/a (%1)").arg(why);
    m_rows.push_back(std::move(row));
}

Row makeRow(const QString &id, const QString &name, const QString &unit, const Measured &m,
            const QString &reference, const QString &note)
{
    Row row;
    row.id = id;
    row.name = name;
    row.unit = unit;
    row.stats = statsOf(m.samples);
    row.reference = reference;
    if (!m.ratios.empty())
        row.ratio = statsOf(m.ratios);
    row.note = note;
    return row;
}

void judge(Row &row, const QString &target, bool met)
{
    row.target = target;
    row.verdict = met ? Verdict::Met : Verdict::NotMet;
}

namespace {

// Three significant digits, no exponent for the sizes that occur here.
QString number(double v)
{
    const double a = std::fabs(v);
    if (a >= 1e6)
        return QString::number(v / 1e6, 'f', a >= 1e8 ? 0 : 2) + QLatin1Char('M');
    if (a >= 100)
        return QString::number(v, 'f', 0);
    if (a >= 10)
        return QString::number(v, 'f', 1);
    if (a >= 1)
        return QString::number(v, 'f', 2);
    return QString::number(v, 'f', 3);
}

QString verdictText(Verdict v)
{
    switch (v) {
    case Verdict::Met: return QStringLiteral("met");
    case Verdict::NotMet: return QStringLiteral("**not met**");
    case Verdict::NotApplicable: return QStringLiteral("n/a");
    case Verdict::None: break;
    }
    return QStringLiteral("—");
}

QString verdictKey(Verdict v)
{
    switch (v) {
    case Verdict::Met: return QStringLiteral("met");
    case Verdict::NotMet: return QStringLiteral("not met");
    case Verdict::NotApplicable: return QStringLiteral("n/a");
    case Verdict::None: break;
    }
    return {};
}

QJsonObject statsJson(const Stats &s)
{
    return QJsonObject{{QStringLiteral("median"), s.median}, {QStringLiteral("p10"), s.p10},
                       {QStringLiteral("p90"), s.p90},       {QStringLiteral("min"), s.min},
                       {QStringLiteral("max"), s.max},       {QStringLiteral("samples"), s.count}};
}

} // namespace

QString Table::markdown() const
{
    QString out;
    out += QStringLiteral("| # | Measurement | Median | p10–p90 (n) | Ratio to ref (p10–p90) | Ref | Target | Met |\n");
    out += QStringLiteral("|---|---|---:|---|---:|---|---|---|\n");
    for (const Row &r : m_rows) {
        QString median, spread, ratio;
        if (r.stats.count > 0) {
            median = number(r.stats.median) + QLatin1Char(' ') + r.unit;
            spread = number(r.stats.p10) + QStringLiteral("–") + number(r.stats.p90)
                    + QStringLiteral(" (%1)").arg(r.stats.count);
        } else {
            median = r.note;
        }
        if (r.ratio) {
            ratio = QString::number(r.ratio->median, 'f', 2) + QStringLiteral("x (")
                    + QString::number(r.ratio->p10, 'f', 2) + QStringLiteral("–")
                    + QString::number(r.ratio->p90, 'f', 2) + QLatin1Char(')');
        }
        QString name = r.name;
        if (r.stats.count > 0 && !r.note.isEmpty())
            name += QStringLiteral(" <br>*") + r.note + QLatin1Char('*');
        out += QStringLiteral("| %1 | %2 | %3 | %4 | %5 | %6 | %7 | %8 |\n")
                       .arg(r.id, name, median, spread, ratio.isEmpty() ? QStringLiteral("—") : ratio,
                            r.reference.isEmpty() ? QStringLiteral("—") : r.reference,
                            r.target.isEmpty() ? QStringLiteral("—") : r.target, verdictText(r.verdict));
    }
    return out;
}

QByteArray Table::json(const QVariantMap &machine) const
{
    QJsonArray rows;
    for (const Row &r : m_rows) {
        QJsonObject o{{QStringLiteral("id"), r.id}, {QStringLiteral("name"), r.name},
                      {QStringLiteral("unit"), r.unit}, {QStringLiteral("reference"), r.reference},
                      {QStringLiteral("target"), r.target}, {QStringLiteral("verdict"), verdictKey(r.verdict)},
                      {QStringLiteral("note"), r.note}};
        if (r.stats.count > 0)
            o.insert(QStringLiteral("value"), statsJson(r.stats));
        if (r.ratio)
            o.insert(QStringLiteral("ratio"), statsJson(*r.ratio));
        rows.append(o);
    }
    QJsonObject root{{QStringLiteral("machine"), QJsonObject::fromVariantMap(machine)},
                     {QStringLiteral("quick"), settings().quick},
                     {QStringLiteral("rows"), rows}};
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

QVariantMap machineInfo()
{
    QVariantMap m;
    QString model;
    QFile cpuinfo(QStringLiteral("/proc/cpuinfo"));
    if (cpuinfo.open(QIODevice::ReadOnly)) {
        const QString text = QString::fromLatin1(cpuinfo.readAll());
        const auto match = QRegularExpression(QStringLiteral("model name\\s*:\\s*(.*)")).match(text);
        if (match.hasMatch())
            model = match.captured(1).trimmed();
    }
    m.insert(QStringLiteral("cpu"), model);
    m.insert(QStringLiteral("cpus"), cpuCount());
    m.insert(QStringLiteral("kernel"), QSysInfo::kernelVersion());
    m.insert(QStringLiteral("os"), QSysInfo::prettyProductName());
    m.insert(QStringLiteral("qt"), QString::fromLatin1(qVersion()));
    m.insert(QStringLiteral("lua"), QString::fromLatin1(LUA_RELEASE));
    QFile loadavg(QStringLiteral("/proc/loadavg"));
    if (loadavg.open(QIODevice::ReadOnly))
        m.insert(QStringLiteral("loadavg"), QString::fromLatin1(loadavg.readAll()).section(QLatin1Char(' '), 0, 2));
    m.insert(QStringLiteral("compiler"), QStringLiteral("g++ %1.%2").arg(__GNUC__).arg(__GNUC_MINOR__));
    return m;
}

} // namespace Bench
