// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "stop/stopcontrol_p.h"
#include "luautil/statecontext_p.h"

#include <QtCore/QFuture>
#include <QtCore/QMutexLocker>

namespace {

// Hook mode: always on.
void countHook(lua_State *L, lua_Debug *)
{
    StopControl &stop = StopControl::from(L);
    stop.checkpoint(L);
    stop.afterCheck(L);
}

// Signal mode: armed by the stop signal for one look, then gone.
void armedHook(lua_State *L, lua_Debug *)
{
    lua_sethook(L, nullptr, 0, 0);
    StopControl &stop = StopControl::from(L);
    stop.checkpoint(L);
    stop.afterCheck(L);
}

} // namespace

StopControl::StopControl() = default;

StopControl &StopControl::from(lua_State *L)
{
    return *StateContext::of(L)->stop;
}
StopControl::~StopControl() = default;

QIsleOptions::StopMode StopControl::modeFor(const QIsleOptions &options)
{
    using Mode = QIsleOptions::StopMode;
    Mode mode = options.stopMode;
    if (mode == Mode::Automatic)
        mode = StopSignal::preferred() ? Mode::Signal : Mode::Hook;
    if (mode == Mode::Signal && !StopSignal::available())
        mode = Mode::Hook; // asked for, but it cannot work here
    return mode;
}

void StopControl::install(lua_State *L, const QIsleOptions &options, std::function<bool()> stopPending)
{
    using Mode = QIsleOptions::StopMode;
    m_mode = modeFor(options);
    if (m_mode == Mode::Signal) {
        m_signal = std::make_unique<StopSignal>(options.stopPollInterval, armedHook, std::move(stopPending));
        if (!m_signal->isValid()) { // modeFor() saw the handler installed: not expected
            m_signal.reset();
            m_mode = Mode::Hook;
        } else if (m_inBurst) {
            m_signal->start(); // installed while requests run
        }
    }
    if (m_mode == Mode::Hook)
        lua_sethook(L, countHook, LUA_MASKCOUNT, options.hookInterval > 0 ? options.hookInterval : 1000);
}

void StopControl::burstBegin()
{
    m_inBurst = true;
}

void StopControl::watch()
{
    if (m_signal)
        m_signal->start();
}

void StopControl::watchNow()
{
    if (m_signal)
        m_signal->startFromAnyThread();
}

void StopControl::burstEnd()
{
    m_inBurst = false;
    if (m_signal)
        m_signal->stop();
}

void StopControl::begin(RunningRequest &running, lua_State *L)
{
    flushResults(); // a nested request runs inline: the outer one's results first
    running.outer = m_current;
    running.previousRunning = StopSignal::running();
    StopSignal::setRunning(L);
    m_current = &running;
}

void StopControl::end(RunningRequest &running)
{
    Q_ASSERT(m_current == &running);
    if (!running.emitted.values.isEmpty())
        flushResults(running); // before the request waits, yields or settles
    m_current = running.outer;
    StopSignal::setRunning(running.previousRunning);
}

std::optional<QIsleError::Kind> StopControl::pendingStop() const
{
    if (!m_current)
        return std::nullopt;
    if (m_current->stop)
        return m_current->stop;
    std::chrono::steady_clock::time_point now{};
    // An outer request's stop stops the nested ones too.
    for (RunningRequest *r = m_current; r; r = r->outer) {
        if (r->canceled || r->promise->isCanceled())
            return QIsleError::Kind::Cancelled;
        if (r->deadline != std::chrono::steady_clock::time_point::max()) {
            if (now == std::chrono::steady_clock::time_point{})
                now = std::chrono::steady_clock::now();
            if (now >= r->deadline)
                return QIsleError::Kind::Timeout;
        }
    }
    return std::nullopt;
}

void StopControl::checkpoint(lua_State *L)
{
    if (!m_current)
        return;
    if (EmittedResults &e = m_current->emitted; !e.values.isEmpty()) {
        // A batch out before a pause, and once it is due (the hook comes
        // here while the script computes on; blocking waits come every slice).
        if (e.sink->isSuspending() || std::chrono::steady_clock::now() - e.since >= ResultWindow)
            flushResults(*m_current);
    }
    // Blocks while suspended; cancel() wakes it.
    m_current->promise->suspendIfRequested();
    const auto now = std::chrono::steady_clock::now();
    if (m_current->stop) {
        // Raised already: cleanup code (__close handlers) gets a moment to
        // run before the hook raises it again. pcall, xpcall and
        // coroutine.resume re-raise at once on their own.
        if (now - m_current->stopRaisedAt >= std::chrono::milliseconds(10))
            raiseStop(L);
        return;
    }
    if (auto kind = pendingStop()) {
        m_current->stop = kind;
        m_current->stopRaisedAt = now;
        raiseStop(L);
    }
}

void StopControl::emitResult(RunningRequest &running, QVariant &&value)
{
    EmittedResults &e = running.emitted;
    if (!e.sink)
        e.sink.emplace(QFutureInterfaceBase::get(running.promise->future()));
    // The index is taken only once the value is held: a memory error here
    // (catchable by pcall) must not leave a hole, where readers stop.
    const int index = running.nextResultIndex;
    if (running.stop) {
        // Emitted by cleanup code while the stop is raised: reported (or, on a
        // canceled future, refused) one by one, as before batches.
        if (!e.values.isEmpty())
            flushResults(running);
        e.sink->reportResult(value, index);
        ++running.nextResultIndex;
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    const bool first = e.values.isEmpty();
    if (first) {
        e.begin = index;
        e.since = now;
        if (e.values.capacity() == 0)
            e.values.reserve(256);
    }
    e.values.append(std::move(value));
    ++running.nextResultIndex;
    if ((first && now - e.lastFlush >= ResultWindow) // after a quiet spell: at once
        || now - e.since >= ResultWindow || e.values.size() >= ResultBatchMax) {
        flushResults(running);
    } else if (first && m_signal && m_current == &running) {
        m_signal->setFlushAt(e.since + ResultWindow);
    }
}

void StopControl::flushResults(RunningRequest &running)
{
    EmittedResults &e = running.emitted;
    QList<QVariant> batch;
    batch.swap(e.values);
    const int begin = e.begin;
    e.lastFlush = std::chrono::steady_clock::now();
    if (m_signal)
        m_signal->setFlushAt(std::chrono::steady_clock::time_point::max());
    QFutureInterface<QVariant> &sink = *e.sink;
    try {
        // The const-reference overloads announce indices past a gap at once
        // (result 0 is missing until the script returns).
        if (batch.size() == 1 ? sink.reportResult(std::as_const(batch).first(), begin)
                              : sink.reportResults(batch, begin)) {
            return;
        }
        // Refused: canceled meanwhile. These were emitted before the script
        // could know; they stay readable, as values reported one by one
        // before the cancel did (a canceled future's watchers announce none).
        QMutexLocker lock(&sink.mutex());
        if (!sink.queryState(QFutureInterfaceBase::Finished) && !sink.hasException())
            sink.resultStoreBase().addResults(begin, &batch);
    } catch (const std::bad_alloc &) {
        // Out of memory in Qt's store: those results are lost, the request goes on.
    }
}

void StopControl::raiseStop(lua_State *L)
{
    Q_ASSERT(m_current && m_current->stop);
    if (*m_current->stop == QIsleError::Kind::Timeout)
        lua_pushliteral(L, "request timed out");
    else
        lua_pushliteral(L, "request canceled");
    lua_error(L);
    Q_UNREACHABLE(); // lua_error throws
}
