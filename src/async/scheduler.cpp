// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "async/scheduler_p.h"

#include "luautil/luaexception_p.h"
#include "luautil/statecontext_p.h"
#include "stop/stopcontrol_p.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QMutexLocker>

#include <algorithm>

#include <QIsle/qisleerror.h>

namespace {
const QEvent::Type ReadyEvent = QEvent::Type(QEvent::registerEventType());
constexpr std::size_t MaxFreeThreads = 16;
constexpr std::size_t MaxFreeWatchers = 16;
} // namespace

Fiber::~Fiber()
{
    delete ownWatcher;
}

Scheduler::Scheduler(std::function<void()> onReady, std::function<void()> onShutdownExpired)
    : m_onReady(std::move(onReady)), m_onShutdownExpired(std::move(onShutdownExpired))
{
    m_timer.setSingleShot(true);
    m_timer.setTimerType(Qt::PreciseTimer);
    connect(&m_timer, &QTimer::timeout, this, &Scheduler::onTimer);
}

Scheduler::~Scheduler()
{
    for (Async::AwaitWatcher *w : m_freeWatchers)
        delete w;
    for (Fiber *f : std::as_const(m_suspended)) {
        if (f->wait.watcher) {
            f->wait.watcher->future().cancel(); // whoever produces it may stop
            delete f->wait.watcher;
            f->wait.watcher = nullptr;
        }
    }
}

Scheduler &Scheduler::from(lua_State *L)
{
    return *StateContext::of(L)->scheduler;
}

lua_State *Scheduler::newThread(int *ref)
{
    if (!m_freeThreads.empty()) {
        const FreeThread free = m_freeThreads.back();
        m_freeThreads.pop_back();
        *ref = free.ref;
        return free.thread;
    }
    lua_State *thread = lua_newthread(m_L); // may raise a memory error: callers are protected
    *ref = luaL_ref(m_L, LUA_REGISTRYINDEX);
    return thread;
}

void Scheduler::releaseThread(lua_State *thread, int ref, bool reusable)
{
    if (reusable && m_freeThreads.size() < MaxFreeThreads) {
        lua_settop(thread, 0);
        m_freeThreads.push_back({thread, ref});
        return;
    }
    luaL_unref(m_L, LUA_REGISTRYINDEX, ref);
}

bool Scheduler::canWait(lua_State *L) const
{
    const Fiber *f = m_running;
    if (!f || f->state != Fiber::State::Running || !lua_isyieldable(L))
        return false;
    if (f->frames.empty())
        return L == f->thread;
    return L == f->frames.back().co && f->frames.back().canWait;
}

void Scheduler::raiseCannotWait(lua_State *L, const char *what) const
{
    luaL_error(L,
               "cannot wait here: %s must wait, and Lua cannot yield at this place (inside a C function "
               "such as table.sort or string.gsub, a __gc finalizer, an exec closure or init, or a "
               "blocking call nested on the Lua thread)",
               what);
    Q_UNREACHABLE();
}

bool Scheduler::isFiberThread(lua_State *L) const
{
    return (m_running && m_running->thread == L) || m_heldThreads.contains(L);
}

bool Scheduler::isParked(lua_State *co) const
{
    return m_heldCoroutines.contains(co);
}

void Scheduler::hold(Fiber *f)
{
    m_heldThreads.insert(f->thread);
    for (lua_State *co : f->parked)
        m_heldCoroutines.insert(co);
}

void Scheduler::release(Fiber *f)
{
    m_heldThreads.remove(f->thread);
    for (lua_State *co : f->parked)
        m_heldCoroutines.remove(co);
    f->parked.clear();
}

void Scheduler::enter(lua_State *from, lua_State *co)
{
    Fiber *f = m_running;
    if (!f)
        return;
    const bool fromTop = f->frames.empty() ? from == f->thread : from == f->frames.back().co;
    const bool below = f->frames.empty() ? true : f->frames.back().canWait;
    f->frames.push_back({co, fromTop && below && lua_isyieldable(from)});
}

void Scheduler::leave(lua_State *co)
{
    Fiber *f = m_running;
    if (!f)
        return;
    // Innermost first; a frame left by an error unwinding is removed too.
    while (!f->frames.empty()) {
        const bool match = f->frames.back().co == co;
        f->frames.pop_back();
        if (match)
            break;
    }
}

void Scheduler::noteParked(lua_State *co)
{
    if (m_running)
        m_running->parked.push_back(co);
}

// --- Waiting -------------------------------------------------------------

void Scheduler::awaitFuture(const QFuture<QVariant> &future)
{
    Fiber *f = m_running;
    Q_ASSERT(f && f->wait.kind == WaitState::Kind::None);
    Async::AwaitWatcher *w;
    if (!m_freeWatchers.empty()) {
        w = m_freeWatchers.back();
        m_freeWatchers.pop_back();
    } else {
        w = new Async::AwaitWatcher; // on the Lua thread, as this
        // Both: a producer may cancel without ever finishing.
        connect(w, &QFutureWatcherBase::finished, this, [this, w] { onAwaited(w); });
        connect(w, &QFutureWatcherBase::canceled, this, [this, w] { onAwaited(w); });
    }
    w->fiber = f;
    f->wait = {};
    f->wait.kind = WaitState::Kind::Future;
    f->wait.watcher = w;
    w->setFuture(future);
}

void Scheduler::sleepUntil(Clock::time_point until)
{
    Fiber *f = m_running;
    Q_ASSERT(f && f->wait.kind == WaitState::Kind::None);
    f->wait = {};
    f->wait.kind = WaitState::Kind::Timer;
    f->wait.wake = addTimer(until, f, Async::TimerEntry::Kind::Wake);
}

int Scheduler::yield(lua_State *L, lua_KFunction k, lua_KContext ctx)
{
    m_runtimeYield = true;
    return lua_yieldk(L, 0, ctx, k);
}

void Scheduler::waitExternal(std::function<void()> withdraw, std::optional<Clock::time_point> until)
{
    Fiber *f = m_running;
    Q_ASSERT(f && f->wait.kind == WaitState::Kind::None);
    f->wait = {};
    f->wait.kind = WaitState::Kind::External;
    f->wait.withdraw = std::move(withdraw);
    if (until)
        f->wait.wake = addTimer(*until, f, Async::TimerEntry::Kind::Wake);
}

WaitState Scheduler::takeOutcome(lua_State *L)
{
    WaitState wait = std::move(m_running->wait);
    m_running->wait = {};
    if (wait.outcome == WaitState::Outcome::Stop)
        raiseStop(L);
    StopControl::from(L).checkpoint(L); // a stop or pause that came meanwhile
    return wait;
}

bool Scheduler::mustNotWait(lua_State *L)
{
    StopControl &stop = StopControl::from(L);
    if (m_shutdownExpired && m_running && m_running->own)
        m_running->own->cancel();
    return stop.stopping() || stop.pendingStop().has_value();
}

void Scheduler::raiseStop(lua_State *L)
{
    StopControl &stop = StopControl::from(L);
    RunningRequest *r = stop.current();
    if (!r->stop) {
        r->stop = stop.pendingStop().value_or(QIsleError::Kind::Cancelled);
        r->stopRaisedAt = std::chrono::steady_clock::now();
    }
    stop.raiseStop(L);
}

void Scheduler::schedule(Fiber *f)
{
    f->wait = {};
    f->state = Fiber::State::Ready;
    m_ready.push_back(f);
    if (m_readyFlag)
        m_readyFlag->store(true, std::memory_order_relaxed);
    if (!m_draining)
        postReady();
}

void Scheduler::wake(Fiber *f)
{
    if (f->state != Fiber::State::Waiting || f->wait.kind != WaitState::Kind::External)
        return;
    f->wait.withdraw = nullptr;
    if (f->wait.outcome == WaitState::Outcome::Pending)
        f->wait.outcome = WaitState::Outcome::Value;
    complete(f);
}

void Scheduler::clearWait()
{
    if (m_running)
        m_running->wait = {};
}

void Scheduler::readOutcome(const QFuture<QVariant> &future, WaitState &wait)
{
    {
        // The common case, a result and no exception: one look under the
        // future's lock, where isResultReadyAt + resultAt take two and copy
        // after letting go of it (isle/futurestore_p.h says why that matters).
        const QFutureInterfaceBase state = QFutureInterfaceBase::get(future);
        QMutexLocker lock(&state.mutex());
        if (!state.hasException() && state.resultStoreBase().contains(0)) {
            wait.outcome = WaitState::Outcome::Value;
            wait.value = state.resultStoreBase().resultAt(0).value<QVariant>();
            return;
        }
    }
    QFuture<QVariant> f = future;
    try {
        f.waitForFinished(); // finished already: rethrows a stored exception
    } catch (const QIsleError &e) {
        wait.outcome = WaitState::Outcome::Error;
        wait.message = e.message();
        return;
    } catch (const std::exception &e) {
        wait.outcome = WaitState::Outcome::Error;
        wait.message = QString::fromLocal8Bit(e.what());
        return;
    } catch (...) {
        wait.outcome = WaitState::Outcome::Error;
        wait.message = QStringLiteral("the awaited future failed with an unknown exception");
        return;
    }
    if (f.isResultReadyAt(0)) {
        wait.outcome = WaitState::Outcome::Value;
        wait.value = f.resultAt(0);
    } else if (f.isCanceled()) {
        wait.outcome = WaitState::Outcome::Canceled;
    } else {
        wait.outcome = WaitState::Outcome::Value; // no result: nil
    }
}

// --- The worker's side ----------------------------------------------------

bool Scheduler::takeRuntimeYield()
{
    const bool was = m_runtimeYield;
    m_runtimeYield = false;
    return was;
}

void Scheduler::parked(Fiber *f)
{
    f->waited = true;
    m_suspended.insert(f);
    hold(f);
    f->state = Fiber::State::Waiting;
    watchOwn(f);
    if (f->running && f->running->deadline != Clock::time_point::max())
        f->deadlineEntry = addTimer(f->running->deadline, f, Async::TimerEntry::Kind::Deadline);
    // A stop that came before the watcher looked.
    if (f->own && f->own->isCanceled()) {
        stop(f);
        return;
    }
    if (m_shutdownExpired) {
        if (f->own)
            f->own->cancel();
        stop(f);
        return;
    }
    if (f->own && f->own->isSuspending())
        f->own->reportSuspended();
    if (f->wait.sliced) {
        f->state = Fiber::State::Ready;
        m_sliced.push_back(f);
        if (m_readyFlag)
            m_readyFlag->store(true, std::memory_order_relaxed);
        return;
    }
    if (f->wait.outcome != WaitState::Outcome::Pending)
        complete(f);
}

bool Scheduler::releaseSliced()
{
    if (m_sliced.empty())
        return false;
    std::move(m_sliced.begin(), m_sliced.end(), std::back_inserter(m_ready));
    m_sliced.clear();
    return true;
}

void Scheduler::stopLocally(Fiber *f)
{
    if (f->running)
        f->running->canceled = true;
    stop(f);
}

void Scheduler::resumed(Fiber *f)
{
    removeTimer(f->deadlineEntry);
    m_suspended.remove(f);
    release(f);
    f->state = Fiber::State::Running;
}

Fiber *Scheduler::takeReady()
{
    while (!m_ready.empty()) {
        Fiber *f = m_ready.front();
        m_ready.pop_front();
        if (m_readyFlag && m_ready.empty() && m_sliced.empty())
            m_readyFlag->store(false, std::memory_order_relaxed);
        if (f->state != Fiber::State::Ready)
            continue;
        // Held after its wait while its request is suspended.
        if (mustHold(f)) {
            if (!m_suspended.contains(f)) {
                // Ready without a wait in this use (a task that has not
                // started): held as a waiting fiber is, so that resume(),
                // cancel() and the isle's end reach it. Its request's future
                // is watched first, then looked at again: a resume() in
                // between is not lost.
                f->waited = true;
                m_suspended.insert(f);
                hold(f);
                watchOwn(f);
                if (!mustHold(f))
                    return f;
            }
            f->state = Fiber::State::Held;
            m_held.push_back(f);
            f->own->reportSuspended();
            continue;
        }
        return f;
    }
    return nullptr;
}

bool Scheduler::mustHold(const Fiber *f) const
{
    return f->own && !f->own->isCanceled() && (f->own->isSuspending() || f->own->isSuspended())
            && f->wait.outcome != WaitState::Outcome::Stop;
}

void Scheduler::finished(Fiber *f)
{
    f->state = Fiber::State::Idle;
    f->frames.clear();
    if (!f->waited)
        return; // the common case: it never waited
    f->waited = false;
    withdraw(f);
    removeTimer(f->deadlineEntry);
    m_suspended.remove(f);
    release(f);
    f->wait = {};
    f->frames.clear();
    f->ownWatched = false;
    f->state = Fiber::State::Idle;
}

void Scheduler::stop(Fiber *f)
{
    switch (f->state) {
    case Fiber::State::Waiting:
        withdraw(f);
        f->wait.outcome = WaitState::Outcome::Stop;
        makeReady(f);
        break;
    case Fiber::State::Held:
        m_held.erase(std::remove(m_held.begin(), m_held.end(), f), m_held.end());
        f->wait.outcome = WaitState::Outcome::Stop;
        makeReady(f);
        break;
    case Fiber::State::Ready:
        f->wait.outcome = WaitState::Outcome::Stop;
        makeReady(f);
        break;
    case Fiber::State::Idle:
    case Fiber::State::Running:
        break; // running: its own checks see the stop
    }
}

void Scheduler::setTimeSlice(std::chrono::milliseconds slice, std::function<bool()> othersWaiting,
                             std::atomic<bool> *readyFlag)
{
    m_timeSlice = slice;
    m_othersWaiting = std::move(othersWaiting);
    m_readyFlag = readyFlag;
}

void Scheduler::sliceHook(lua_State *L)
{
    Scheduler &s = from(L);
    Fiber *f = s.m_running;
    if (!f || s.m_timeSlice.count() <= 0 || f->state != Fiber::State::Running)
        return;
    if (Clock::now() - s.m_sliceStart < s.m_timeSlice)
        return;
    if (s.m_ready.empty() && s.m_sliced.empty() && !(s.m_othersWaiting && s.m_othersWaiting()))
        return;
    if (!s.canWait(L) || StopControl::from(L).stopping())
        return; // inside a C function (or stopping): it runs on
    // A wait that has already ended: the fiber goes behind the ready ones.
    f->wait = {};
    f->wait.sliced = true;
    f->wait.outcome = WaitState::Outcome::Value;
    s.m_runtimeYield = true;
    lua_yield(L, 0); // from a count hook: Lua goes on where it stopped
}

void Scheduler::setShutdownDeadline(Clock::time_point deadline)
{
    if (m_shutdownAt)
        return;
    m_shutdownAt = deadline;
    rearm();
}

// --- Inside ----------------------------------------------------------------

void Scheduler::complete(Fiber *f)
{
    removeTimer(f->wait.wake);
    makeReady(f);
}

void Scheduler::makeReady(Fiber *f)
{
    if (f->state == Fiber::State::Ready) {
        return; // queued already
    }
    f->state = Fiber::State::Ready;
    m_ready.push_back(f);
    if (!m_draining)
        postReady();
}

void Scheduler::postReady()
{
    if (m_readyPosted)
        return;
    m_readyPosted = true;
    QCoreApplication::postEvent(this, new QEvent(ReadyEvent));
}

bool Scheduler::event(QEvent *event)
{
    if (event->type() == ReadyEvent) {
        m_readyPosted = false;
        m_onReady();
        return true;
    }
    return QObject::event(event);
}

void Scheduler::withdraw(Fiber *f)
{
    WaitState &w = f->wait;
    if (w.watcher) {
        Async::AwaitWatcher *watcher = w.watcher;
        w.watcher = nullptr;
        watcher->fiber = nullptr;
        if (!watcher->isFinished())
            watcher->future().cancel();
        if (m_freeWatchers.size() < MaxFreeWatchers)
            m_freeWatchers.push_back(watcher);
        else
            watcher->deleteLater();
    }
    removeTimer(w.wake);
    if (w.withdraw) {
        auto fn = std::move(w.withdraw);
        w.withdraw = nullptr;
        fn();
    }
}

void Scheduler::watchOwn(Fiber *f)
{
    if (!f->own)
        return;
    if (!f->ownWatcher) {
        auto *w = new QFutureWatcher<QVariant>;
        connect(w, &QFutureWatcherBase::canceled, this, [this, f] { onOwnCanceled(f); });
        connect(w, &QFutureWatcherBase::resumed, this, [this, f] { onOwnResumed(f); });
        connect(w, &QFutureWatcherBase::suspending, this, [this, f] { onOwnSuspending(f); });
        f->ownWatcher = w;
    }
    if (!f->ownWatched) {
        f->ownWatched = true;
        f->ownWatcher->setFuture(f->own->future());
    }
}

void Scheduler::onAwaited(Async::AwaitWatcher *watcher)
{
    Fiber *f = watcher->fiber;
    if (!f || f->wait.watcher != watcher || f->state != Fiber::State::Waiting)
        return;
    const QFuture<QVariant> future = watcher->future();
    if (future.isFinished()) {
        settleFuture(f);
    } else if (future.isCanceled() && !f->wait.wake) {
        // Canceled, not finished: a failure (Qt flags a future that stores
        // an exception canceled first, then finishes it) or a producer's
        // cancel. Its finish decides; one that never comes means canceled.
        f->wait.wake = addTimer(Clock::now() + std::chrono::milliseconds(50), f, Async::TimerEntry::Kind::Wake);
    }
    // Otherwise a late event of a future this watcher watched before.
}

// The awaited future finished (or was canceled and never finished): its
// outcome ends the wait.
void Scheduler::settleFuture(Fiber *f)
{
    Async::AwaitWatcher *watcher = f->wait.watcher;
    const QFuture<QVariant> future = watcher->future();
    if (future.isFinished())
        readOutcome(future, f->wait);
    else
        f->wait.outcome = WaitState::Outcome::Canceled;
    watcher->fiber = nullptr;
    f->wait.watcher = nullptr;
    if (m_freeWatchers.size() < MaxFreeWatchers)
        m_freeWatchers.push_back(watcher);
    else
        watcher->deleteLater();
    complete(f);
}

void Scheduler::onOwnCanceled(Fiber *f)
{
    if (f->own && f->own->isCanceled() && m_suspended.contains(f))
        stop(f);
}

// A suspended fiber does nothing while it waits: it is suspended at once,
// and held after its wait until resume().
void Scheduler::onOwnSuspending(Fiber *f)
{
    if (f->own && m_suspended.contains(f) && f->own->isSuspending() && !f->own->isCanceled())
        f->own->reportSuspended();
}

// Every fiber of the request held meanwhile goes on, in the order it was
// held (the one that was ready first runs first: a task that had not
// started starts before its spawner goes on), whichever fiber's watcher
// reports the resume first.
void Scheduler::onOwnResumed(Fiber *f)
{
    if (f->state != Fiber::State::Held)
        return;
    QFutureInterface<QVariant> *own = f->own;
    // Ahead of the ready queue: a fiber of the same request that became
    // ready meanwhile (a wait that ended while the worker was idle, not yet
    // looked at, so not held) must not overtake those held before it.
    std::vector<Fiber *> resumed;
    for (auto it = m_held.begin(); it != m_held.end();) {
        Fiber *held = *it;
        if (held->own == own) {
            it = m_held.erase(it);
            held->state = Fiber::State::Ready;
            resumed.push_back(held);
        } else {
            ++it;
        }
    }
    if (resumed.empty())
        return;
    for (auto it = resumed.rbegin(); it != resumed.rend(); ++it)
        m_ready.prepend(*it);
    if (m_readyFlag)
        m_readyFlag->store(true, std::memory_order_relaxed);
    if (!m_draining)
        postReady();
}

Async::TimerMap::iterator Scheduler::addTimer(Clock::time_point when, Fiber *f, Async::TimerEntry::Kind kind)
{
    const bool first = m_timers.empty() || when < m_timers.begin()->first;
    auto it = m_timers.emplace(when, Async::TimerEntry{f, kind});
    if (first)
        rearm();
    return it;
}

void Scheduler::removeTimer(std::optional<Async::TimerMap::iterator> &entry)
{
    if (!entry)
        return;
    m_timers.erase(*entry);
    entry.reset();
    // The timer may fire early for nothing: onTimer rearms.
}

void Scheduler::rearm()
{
    std::optional<Clock::time_point> next;
    if (!m_timers.empty())
        next = m_timers.begin()->first;
    if (m_shutdownAt && !m_shutdownExpired && (!next || *m_shutdownAt < *next))
        next = m_shutdownAt;
    if (!next) {
        m_timer.stop();
        return;
    }
    const auto now = Clock::now();
    qint64 ms = 0;
    if (*next > now) {
        // Round up: a precise timer never fires before its time.
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(*next - now).count();
        ms = (us + 999) / 1000;
    }
    m_timer.start(int(qMin<qint64>(ms, std::numeric_limits<int>::max())));
}

void Scheduler::onTimer()
{
    const auto now = Clock::now();
    while (!m_timers.empty() && m_timers.begin()->first <= now) {
        const auto it = m_timers.begin();
        const Async::TimerEntry entry = it->second;
        Fiber *f = entry.fiber;
        if (entry.kind == Async::TimerEntry::Kind::Wake) {
            f->wait.wake.reset();
            m_timers.erase(it);
            if (f->state == Fiber::State::Waiting && f->wait.watcher) {
                settleFuture(f); // a canceled future that did not finish in time
            } else if (f->state == Fiber::State::Waiting) {
                if (f->wait.outcome == WaitState::Outcome::Pending)
                    f->wait.outcome = WaitState::Outcome::Value;
                if (f->wait.withdraw) { // a bounded wait that timed out
                    auto fn = std::move(f->wait.withdraw);
                    f->wait.withdraw = nullptr;
                    fn();
                }
                makeReady(f);
            }
        } else {
            f->deadlineEntry.reset();
            m_timers.erase(it);
            stop(f);
        }
    }
    if (m_shutdownAt && !m_shutdownExpired && *m_shutdownAt <= now) {
        m_shutdownExpired = true;
        m_onShutdownExpired();
    }
    rearm();
}
