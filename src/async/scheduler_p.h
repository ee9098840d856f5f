// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "async/fiber_p.h"

#include <QtCore/QEvent>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtCore/QSet>
#include <QtCore/QTimer>

#include <QIsle/QIsleLua>

#include <atomic>
#include <functional>
#include <vector>

class StopControl;

// The waits of an isle's VM. A fiber (a request's coroutine) that must wait
// yields up to the worker -- through the script's own coroutines, which pass
// such a "runtime yield" on -- and the Lua thread is free meanwhile. What ends
// a wait (an awaited future, a timer, a stop) makes the fiber ready; the
// worker resumes it, and the C function that waited continues in its
// continuation (lua_yieldk), reading how the wait ended from Fiber::wait.
//
// Waking is event-driven: watchers of awaited futures and of the request's
// own future (cancel, suspend), and one precise timer for sleeps and
// deadlines, all on the Lua thread's event loop. Nothing polls.
//
// Lua thread only (it lives there; its signals and timer fire there).
class Scheduler : public QObject
{
    Q_OBJECT
public:
    using Clock = Async::Clock;

    // onReady: fibers became ready (called from the event loop, never
    // inside a resume). onShutdownExpired: the shutdown deadline passed.
    Scheduler(std::function<void()> onReady, std::function<void()> onShutdownExpired);
    ~Scheduler() override;

    // The scheduler of the VM that L (or any coroutine of it) belongs to.
    static Scheduler &from(lua_State *L);
    // The VM's main thread: new fiber threads are made from it (and inherit
    // its hook in hook mode).
    void attach(lua_State *mainState) { m_L = mainState; }

    // --- Threads of fibers, anchored in the registry; a few are kept for
    // reuse (reusable: it ended normally, its stack is empty).
    lua_State *newThread(int *ref);
    void releaseThread(lua_State *thread, int ref, bool reusable);

    // --- What runs now.
    Fiber *running() const { return m_running; }
    // Worker: around one resume of f (nullptr after).
    void setRunning(Fiber *f)
    {
        m_running = f;
        if (f && m_timeSlice.count() > 0)
            m_sliceStart = Clock::now();
    }
    Clock::time_point sliceStart() const { return m_sliceStart; }

    // Whether code running on L may wait: L is the innermost coroutine of
    // the running fiber, L can yield, and so could every coroutine between
    // it and the fiber (a coroutine resumed from table.sort's comparator
    // cannot wait, though Lua would let it yield to its resumer).
    bool canWait(lua_State *L) const;
    // Lua error "cannot wait here" (what: the wait, e.g. "an async function").
    [[noreturn]] void raiseCannotWait(lua_State *L, const char *what) const;
    // Whether L is a fiber's own thread: the request's top level, which
    // behaves as Lua's main chunk (coroutine.running/isyieldable/yield).
    bool isFiberThread(lua_State *L) const;
    // Whether co is a script coroutine suspended in a wait.
    bool isParked(lua_State *co) const;
    // Whether co is held by the runtime: a fiber's thread or a parked
    // coroutine. Seen from elsewhere its status is "normal": scripts may
    // neither resume nor close it.
    bool isHeld(lua_State *co) const { return isFiberThread(co) || isParked(co); }
    // The shutdown deadline passed: waits are refused (the request stops).
    bool shutdownExpired() const { return m_shutdownExpired; }

    // --- Waiting: the C function that waits, on the running fiber's
    // innermost coroutine L (canWait(L) true), records the wait, then ends
    // with `return yield(L, k, ctx)`; k reads running()->wait.
    void awaitFuture(const QFuture<QVariant> &future);
    void sleepUntil(Clock::time_point until);
    int yield(lua_State *L, lua_KFunction k, lua_KContext ctx);
    // A wait that another fiber ends with wake() (a join, a channel);
    // withdraw takes it back when the waiter is stopped first, or when
    // `until` passes (then the wait ends as it is: the waiter tells a
    // timeout by what wake() would have filled in).
    void waitExternal(std::function<void()> withdraw, std::optional<Clock::time_point> until = {});
    // Clears the running fiber's wait after k read it.
    void clearWait();
    // In k: how the running fiber's wait ended (cleared); raises the stop
    // when it ended with one, parks while the request is suspended.
    WaitState takeOutcome(lua_State *L);
    // Before a wait starts: whether the running request is stopping (then
    // it waits no more: raiseStop()). Past shutdown's deadline for waits,
    // cancels the request first.
    bool mustNotWait(lua_State *L);
    // Raises the running fiber's stop: the pending one (cancel, deadline),
    // else a cancel (a task's own, its request's failure, shutdown).
    [[noreturn]] static void raiseStop(lua_State *L);
    // A finished future's outcome, as a wait would read it.
    static void readOutcome(const QFuture<QVariant> &future, WaitState &wait);

    // --- coroutine.resume/wrap: a runtime yield passes through them.
    bool runtimeYieldPending() const { return m_runtimeYield; }
    // Around resuming script coroutine co from L.
    void enter(lua_State *from, lua_State *co);
    void leave(lua_State *co);
    // co passed a runtime yield on (its resumer is about to yield too).
    void noteParked(lua_State *co);

    // --- The worker's side.
    // After lua_resume returned LUA_YIELD: whether it was a runtime yield
    // (and forget it).
    bool takeRuntimeYield();
    // A new fiber (a task): ready, to be resumed after what is ready now.
    void schedule(Fiber *f);
    // Ends f's external wait (outcome Value) if it still waits.
    void wake(Fiber *f);
    // Time slices (QIsleOptions::timeSlice): othersWaiting tells whether a
    // queued request could start now; readyFlag (read by the stop monitor's
    // thread) is kept true while fibers are ready.
    void setTimeSlice(std::chrono::milliseconds slice, std::function<bool()> othersWaiting,
                      std::atomic<bool> *readyFlag);
    std::chrono::milliseconds timeSlice() const { return m_timeSlice; }
    // For StopControl::setAfterCheck: the hook looked and found no stop. A
    // fiber past its slice while others are ready yields here (a runtime
    // yield from the hook) and goes behind them, where it can wait.
    static void sliceHook(lua_State *L);
    // The worker drains now: new ready fibers need no wake-up event.
    void setDraining(bool draining) { m_draining = draining; }
    // f came back from a resume with a runtime yield: it now waits.
    void parked(Fiber *f);
    // f is resumed now (it was ready).
    void resumed(Fiber *f);
    // The next ready fiber, or nullptr. A fiber whose request is suspended is
    // held instead (until resume() or cancel()).
    Fiber *takeReady();
    bool hasReady() const { return !m_ready.empty(); }
    // Fibers paused by their time slice go behind everything else: they
    // become ready when nothing else is (true when there were any).
    bool releaseSliced();
    // f ended: drop what is left of its wait (timers, watchers).
    void finished(Fiber *f);
    // Stops f at its wait (cancel, deadline): the awaited future is canceled,
    // and f, made ready, raises the stop in its continuation.
    void stop(Fiber *f);
    // A stop of f's own (a task's cancel, its group's failure): f stops at
    // its wait, or, running on after a time slice, at its next check.
    void stopLocally(Fiber *f);
    // Every fiber that waits, is ready or held (abort, shutdown deadline).
    QList<Fiber *> suspendedFibers() const { return m_suspended.values(); }
    // From now on (shutdown()), waits get until `deadline`.
    void setShutdownDeadline(Clock::time_point deadline);

protected:
    bool event(QEvent *event) override;

private:
    void complete(Fiber *f);
    // f's request is suspended: f, ready, is held instead (takeReady).
    bool mustHold(const Fiber *f) const;
    void hold(Fiber *f);
    void release(Fiber *f);
    void makeReady(Fiber *f);
    void withdraw(Fiber *f);
    void watchOwn(Fiber *f);
    void onAwaited(Async::AwaitWatcher *watcher);
    void settleFuture(Fiber *f);
    void onOwnCanceled(Fiber *f);
    void onOwnResumed(Fiber *f);
    void onOwnSuspending(Fiber *f);
    void onTimer();
    Async::TimerMap::iterator addTimer(Clock::time_point when, Fiber *f, Async::TimerEntry::Kind kind);
    void removeTimer(std::optional<Async::TimerMap::iterator> &entry);
    void rearm();
    void postReady();

    std::function<void()> m_onReady;
    std::function<void()> m_onShutdownExpired;
    lua_State *m_L = nullptr;
    Fiber *m_running = nullptr;
    bool m_runtimeYield = false;
    bool m_readyPosted = false;
    bool m_draining = false;
    std::chrono::milliseconds m_timeSlice{0};
    Clock::time_point m_sliceStart;
    std::function<bool()> m_othersWaiting;
    std::atomic<bool> *m_readyFlag = nullptr;
    // QList, not std::deque: an empty one allocates nothing (libstdc++'s
    // deque holds a 512-byte block from its construction, and every idle
    // isle has these; issue 18, row 7f). Both take from the front in O(1).
    QList<Fiber *> m_ready;
    QList<Fiber *> m_sliced; // ready, after a time slice (see releaseSliced)
    QList<Fiber *> m_held;   // held, in the order they were
    QSet<Fiber *> m_suspended; // waiting, ready or held
    QSet<lua_State *> m_heldThreads;    // their threads
    QSet<lua_State *> m_heldCoroutines; // script coroutines suspended in their waits
    Async::TimerMap m_timers;
    QTimer m_timer;
    std::optional<Clock::time_point> m_shutdownAt;
    bool m_shutdownExpired = false;
    std::vector<Async::AwaitWatcher *> m_freeWatchers;
    struct FreeThread
    {
        lua_State *thread;
        int ref;
    };
    std::vector<FreeThread> m_freeThreads;
};
