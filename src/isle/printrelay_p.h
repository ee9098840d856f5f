// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/QStringList>

#include <chrono>
#include <memory>
#include <mutex>

class QIsle;
class QObject;

// print() lines from the Lua thread to QIsle::printed in the QIsle's thread.
// The lines wait in a mutex-guarded list; one data-less wake-up event per
// burst (posted with QCoreApplication::postEvent, as the request queue does)
// has the QIsle's thread emit them, in order. So a flood of prints costs one
// event per burst, not one per line, and every hand-off of a line is a
// mutex TSan can see (Qt's own queued-signal hand-off happens inside
// uninstrumented Qt). Shared by the Lua thread and the QIsle: an abandoned
// Lua thread may still print after the QIsle is gone. One wake-up emits for
// at most DeliverBudget and leaves the rest to a wake-up of its own, so a
// flood of prints (or slow slots) never holds the QIsle's thread for long:
// its timers and other events get their turn between slices. Slices never
// reorder a script's prints after its end: lines printed before a request
// finished (requestEnding()) are all emitted before the wake-up that
// delivers them returns, so they reach printed ahead of the future's
// finished notification, which Qt posts behind that wake-up -- unless slots
// too slow for the flood hold the thread BarrierBudget long: then the rest
// goes on in slices, still in order, but may follow the finish.
class PrintRelay : public std::enable_shared_from_this<PrintRelay>
{
public:
    // Creates the receiver as a child of isle (it follows isle's thread).
    static std::shared_ptr<PrintRelay> create(QIsle *isle);

    // Lua thread: queues a line; the first of a burst posts the wake-up.
    void push(const QString &line);
    // Lua thread, before a request's future finishes: every line printed so
    // far must reach printed before the finished notification does.
    void requestEnding();
    // The QIsle is going: nothing more is posted or emitted. Any thread.
    void detach();
    // The receiver's thread, once the Lua thread has ended (QIsle::shutdown):
    // emits every line not emitted yet, without slices, so a program that
    // runs no event loop after its last blocking call loses none.
    void drain(QIsle *isle);

private:
    class Receiver;
    PrintRelay() = default;
    enum class Budget { Sliced, None };
    void deliver(QIsle *isle, Budget budget = Budget::Sliced); // the receiver's thread

    static constexpr std::chrono::microseconds DeliverBudget{1000};
    static constexpr std::chrono::milliseconds BarrierBudget{20};

    std::mutex m_mutex;
    QStringList m_lines;          // guarded by m_mutex
    QStringList m_backlog;        // the receiver's thread: taken, not emitted yet
    qsizetype m_next = 0;         // the receiver's thread: m_backlog's next line
    QObject *m_receiver = nullptr; // guarded by m_mutex; nullptr once detached
    bool m_scheduled = false;     // guarded by m_mutex: a wake-up is posted
    quint64 m_pushed = 0;         // written by the Lua thread under m_mutex: lines pushed so far
    quint64 m_barrier = 0;        // written by the Lua thread under m_mutex: lines to emit before any slice ends
    quint64 m_emittedHere = 0;    // the receiver's thread: lines emitted so far
};
