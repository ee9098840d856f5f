// What the stress tests share: their scale, their seed, a watchdog that turns
// a hang into a failure with a message, and failures collected off the test
// thread.
#pragma once

#include <QtCore/QDebug>
#include <QtCore/QMutex>
#include <QtCore/QRandomGenerator>
#include <QtCore/QStringList>
#include <QtCore/QVariant>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define QISLE_STRESS_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define QISLE_STRESS_SANITIZED 1
#  endif
#endif

namespace StressKit {

// QISLE_STRESS_SCALE (default 1) scales the request counts; sanitizer runs
// use less.
inline double scale()
{
    bool ok = false;
    const double s = qEnvironmentVariable("QISLE_STRESS_SCALE").toDouble(&ok);
    return ok && s > 0 ? s : 1.0;
}

inline int scaled(int n)
{
    return qMax(1, int(n * scale()));
}

// The run's base seed: QISLE_STRESS_SEED, else `fallback`. Every generator of
// a run derives from it, so a failing run's request sequence can be repeated
// (the interleaving of threads cannot).
inline quint32 seed(quint32 fallback)
{
    bool ok = false;
    const quint32 s = qEnvironmentVariable("QISLE_STRESS_SEED").toUInt(&ok);
    return ok ? s : fallback;
}

// Ends the process with a message when a phase outlives its limit: a hang
// must fail, not stall CI until its global timeout.
class Watchdog
{
public:
    explicit Watchdog(const char *test, std::chrono::seconds limit = std::chrono::seconds(120))
        : m_test(test), m_limit(limit)
    {
        m_thread = std::thread([this] {
            std::unique_lock lock(m_mutex);
            if (!m_done.wait_for(lock, m_limit, [this] { return m_stop; }))
                qFatal("%s: watchdog: not done after %lld s (phase: %s, %d requests checked, seed %u); "
                       "a future never finished or the VM stopped serving",
                       m_test, qlonglong(m_limit.count()), m_phase.load(), progress.load(), m_seed.load());
        });
    }
    ~Watchdog()
    {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_done.notify_all();
        m_thread.join();
    }
    void setPhase(const char *phase) { m_phase = phase; }
    void setSeed(quint32 seed) { m_seed = seed; }
    std::atomic<int> progress{0};

private:
    const char *m_test;
    const std::chrono::seconds m_limit;
    std::atomic<const char *> m_phase{"start"};
    std::atomic<quint32> m_seed{0};
    std::mutex m_mutex;
    std::condition_variable m_done;
    bool m_stop = false;
    std::thread m_thread;
};

// Failures seen off the test thread, reported by the test thread.
class Failures
{
public:
    void add(const QString &text)
    {
        QMutexLocker lock(&m_mutex);
        ++m_count;
        if (m_texts.size() < 20)
            m_texts << text;
    }
    int count() const
    {
        QMutexLocker lock(&m_mutex);
        return m_count;
    }
    QString summary() const
    {
        QMutexLocker lock(&m_mutex);
        return QStringLiteral("%1 failures, first ones:\n  ").arg(m_count) + m_texts.join(QStringLiteral("\n  "));
    }

private:
    mutable QMutex m_mutex;
    QStringList m_texts;
    int m_count = 0;
};

inline QString describe(const QVariant &v)
{
    QString s;
    QDebug(&s).nospace() << v;
    return s;
}

} // namespace StressKit
