// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "stop/stopcontrol_p.h"

#include <QtCore/QFuture>
#include <QtCore/QFutureWatcher>
#include <QtCore/QVariant>

#include <QIsle/QIsleLua>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <vector>

struct Fiber;

namespace Async {
using Clock = std::chrono::steady_clock;

// One entry of the scheduler's timer list.
struct TimerEntry
{
    enum class Kind { Wake, Deadline };
    Fiber *fiber;
    Kind kind;
};
using TimerMap = std::multimap<Clock::time_point, TimerEntry>;

// A watcher of an awaited future, pooled by the scheduler.
class AwaitWatcher : public QFutureWatcher<QVariant>
{
public:
    Fiber *fiber = nullptr; // the fiber that waits through it, or nullptr
};
} // namespace Async

// What a fiber waits for and how the wait ended. Lua thread only.
struct WaitState
{
    enum class Kind { None, Future, Timer, External };
    enum class Outcome { Pending, Value, Error, Canceled, Stop };

    Kind kind = Kind::None;
    Outcome outcome = Outcome::Pending;
    QVariant value;  // Outcome::Value
    QString message; // Outcome::Error
    Async::AwaitWatcher *watcher = nullptr;           // Kind::Future
    std::optional<Async::TimerMap::iterator> wake;   // Kind::Timer, or a bounded External wait
    std::function<void()> withdraw;                   // Kind::External: leave the queue it waits in
    // Kind::External, filled by whoever ends the wait (channels, select):
    int index = 0;        // which channel of a select (0: none, the timeout)
    bool ok = false;      // a value was delivered (else: the channel closed)
    long long slot = 0;   // where it waits in the channel (the value, or a sender's)
    bool sliced = false;  // not a wait: its time slice ended (it goes on where it was)
};

// A coroutine that the scheduler resumes from the worker: a request's own Lua
// thread (and later a task's). At the Lua level its top behaves as Lua's main
// chunk; a wait anywhere on its coroutine stack yields it up to the worker.
//
// Owned by the worker (pooled, with its thread); Lua thread only.
struct Fiber
{
    enum class State {
        Idle,    // in the pool
        Running, // resumed by the worker now
        Waiting, // suspended in a wait
        Ready,   // its wait ended: to be resumed
        Held,    // its wait ended while its request is suspended
    };

    virtual ~Fiber();

    lua_State *thread = nullptr; // anchored in the registry by ref
    int ref = LUA_NOREF;
    State state = State::Idle;
    quint64 serial = 0;          // a new number for every use (children name their parent by it)
    RunningRequest *running = nullptr; // the stop state of the request it serves
    // The request's future: a cancel or suspend of a waiting fiber is seen
    // through ownWatcher (made at its first wait).
    QFutureInterface<QVariant> *own = nullptr;
    QFutureWatcher<QVariant> *ownWatcher = nullptr;
    bool ownWatched = false; // ownWatcher watches this use's future
    bool waited = false;     // it waited during this use
    std::optional<Async::TimerMap::iterator> deadlineEntry; // while waiting with a deadline
    bool inProgressListed = false; // registered with the queue as in progress (for abort)

    WaitState wait;

    // The script coroutines this fiber resumed (coroutine.resume/wrap),
    // innermost last; canWait: every coroutine below can yield too.
    struct Frame
    {
        lua_State *co;
        bool canWait;
    };
    std::vector<Frame> frames;
    // Script coroutines suspended in this fiber's wait (their status is "normal").
    std::vector<lua_State *> parked;

    bool isTask = false;      // an isle.spawn task (else a request's own fiber)
    Fiber *joining = nullptr; // the task this fiber waits for in task:join()
};

// The Lua value of an isle.spawn task (userdata "isle.task"). Its user value
// holds the outcome once the task ended: {n = count, results...} or
// {error object}. Lua thread only.
struct TaskHandle
{
    enum class End { Running, Returned, Failed, Canceled };
    Fiber *fiber = nullptr; // while it runs
    End end = End::Running;
};
