// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/printrelay_p.h"

#include <QIsle/qisle.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QEvent>
#include <QtCore/QObject>
#include <QtCore/QPointer>

namespace {
const QEvent::Type FlushEvent = QEvent::Type(QEvent::registerEventType());
}

class PrintRelay::Receiver : public QObject
{
public:
    Receiver(std::shared_ptr<PrintRelay> relay, QIsle *isle) : QObject(isle), m_relay(std::move(relay)), m_isle(isle) { }

protected:
    bool event(QEvent *e) override
    {
        if (e->type() != FlushEvent)
            return QObject::event(e);
        m_relay->deliver(m_isle);
        return true;
    }

private:
    std::shared_ptr<PrintRelay> m_relay;
    QIsle *m_isle; // the parent
};

std::shared_ptr<PrintRelay> PrintRelay::create(QIsle *isle)
{
    std::shared_ptr<PrintRelay> relay(new PrintRelay);
    relay->m_receiver = new Receiver(relay, isle);
    return relay;
}

void PrintRelay::push(const QString &line)
{
    std::lock_guard<std::mutex> lock(m_mutex);
    if (!m_receiver)
        return;
    m_lines.append(line);
    ++m_pushed;
    if (!m_scheduled) {
        m_scheduled = true;
        // Under the lock: detach() cannot let the receiver go meanwhile.
        QCoreApplication::postEvent(m_receiver, new QEvent(FlushEvent));
    }
}

void PrintRelay::requestEnding()
{
    // No wake-up of its own: a line not yet emitted has one posted (ahead of
    // the finished notification) or is being emitted by deliver(), which
    // looks at the barrier again before it lets go.
    // Both counters are written by this thread alone (under the lock, for
    // deliver()): nothing printed since the last barrier, no lock to take
    // -- the case of almost every request.
    if (m_barrier == m_pushed)
        return;
    std::lock_guard<std::mutex> lock(m_mutex);
    m_barrier = m_pushed;
}

void PrintRelay::detach()
{
    std::lock_guard<std::mutex> lock(m_mutex);
    m_receiver = nullptr;
    m_lines.clear();
}

void PrintRelay::drain(QIsle *isle)
{
    deliver(isle, Budget::None);
}

void PrintRelay::deliver(QIsle *isle, Budget budget)
{
    const bool sliced = budget == Budget::Sliced;
    const std::shared_ptr<PrintRelay> keep = shared_from_this(); // a slot may destroy the isle
    const QPointer<QIsle> alive(isle);
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + DeliverBudget;
    const auto barrierEnd = start + BarrierBudget;
    for (;;) {
        quint64 barrier;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (!m_receiver)
                return;
            m_scheduled = false;
            if (m_next >= m_backlog.size()) {
                m_backlog.clear();
                m_next = 0;
                m_backlog.swap(m_lines);
            }
            barrier = m_barrier;
        }
        // Past the budget, stop at a multiple of 16 lines, but not short of
        // the barrier (lines of requests that have finished) unless slots
        // held the thread for BarrierBudget already.
        for (int n = 1; m_next < m_backlog.size() && alive; ++n) {
            const QString line = m_backlog.at(m_next++); // a slot may re-enter deliver()
            ++m_emittedHere;
            Q_EMIT isle->printed(line);
            if (sliced && n % 16 == 0) {
                const auto now = std::chrono::steady_clock::now();
                if (now >= end && (m_emittedHere >= barrier || now >= barrierEnd))
                    break;
            }
        }
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!m_receiver || !alive)
            return;
        const bool more = m_next < m_backlog.size() || !m_lines.isEmpty();
        if (more && (!sliced || (m_emittedHere < m_barrier && std::chrono::steady_clock::now() < barrierEnd)))
            continue; // a request ended meanwhile: its lines go before this returns
        if (more && !m_scheduled) {
            // The rest in a later slice, still ahead of lines printed meanwhile
            // (whose own wake-up may have been this one).
            m_scheduled = true;
            QCoreApplication::postEvent(m_receiver, new QEvent(FlushEvent));
        }
        return;
    }
}
