// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "stop/stopsignal_p.h"

#include <QIsle/qisleerror.h>
#include <QIsle/qisleoptions.h>

#include <QtCore/QFutureInterface>
#include <QtCore/QList>
#include <QtCore/QPromise>
#include <QtCore/QVariant>

#include <QIsle/QIsleLua>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

// isle.emit()'s results on their way into the request's future. They are
// reported a batch at a time (QFutureInterface::reportResults: one
// resultsReadyAt per batch), so a flood of emits costs a watching thread one
// event per batch rather than one per value. Lua thread only.
struct EmittedResults
{
    QList<QVariant> values; // results begin, begin + 1, ... not reported yet
    int begin = 1;
    std::optional<QFutureInterface<QVariant>> sink; // the request's future, once it emitted
    std::chrono::steady_clock::time_point since;     // when values' first one came
    std::chrono::steady_clock::time_point lastFlush; // when a batch last went out
};

// What the stop machinery knows of one running request. Requests nest when a
// blocking call is made on the Lua thread itself (it runs inline).
struct RunningRequest
{
    QPromise<QVariant> *promise = nullptr; // the request's: canceled, suspended, results
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    RunningRequest *outer = nullptr;
    std::optional<QIsleError::Kind> stop; // set once the stop is being raised
    std::chrono::steady_clock::time_point stopRaisedAt;
    int nextResultIndex = 1;              // isle.emit(): result 0 is the return value
    EmittedResults emitted;               // isle.emit(): the batch not reported yet
    bool canceled = false;                // a stop of its own (async: a task's cancel, its group's failure)
    lua_State *previousRunning = nullptr; // StopSignal::running() before this request
};

// The stop machinery: a hook that asks whether the running request must stop
// (cancel, timeout) or pause (suspend). The Lua functions that must not
// swallow a stop (pcall, xpcall, coroutine.resume/wrap) live in
// lualib/stopawarelib.cpp and use only the public members below.
//
// Two ways to run the hook (QIsleOptions::StopMode):
// - Signal: no hook while scripts run. A monitor thread looks at the running
//   request every stopPollInterval and, only when it must stop, pause or time
//   out, signals the Lua thread, which arms a one-shot hook on the running
//   coroutine (StopSignal). Scripts run at the speed of a VM without hooks.
// - Hook: an always-on count hook every hookInterval instructions, which
//   coroutines inherit when they are created.
//
// Lua thread only.
class StopControl
{
public:
    StopControl();
    ~StopControl();

    // The StopControl of the VM that L (or any coroutine of it) belongs to.
    static StopControl &from(lua_State *L);

    // The mode install() will choose for these options (any thread: QIsle
    // knows it before its Lua thread runs).
    static QIsleOptions::StopMode modeFor(const QIsleOptions &options);
    // Chooses the mode and installs the hook or the stop signal.
    // stopPending: thread-safe, whether the running request must stop or
    // pause (asked by the monitor thread in signal mode).
    void install(lua_State *L, const QIsleOptions &options, std::function<bool()> stopPending);
    QIsleOptions::StopMode mode() const { return m_mode; }

    // Around a burst of requests: the monitor watches only while work runs,
    // and only from the burst's first run that another thread may stop.
    void burstBegin();
    void burstEnd();
    // The run about to begin may be stopped by another thread -- its
    // caller holds a future it may cancel or suspend, it has a deadline or
    // a time slice, or it is a canceled task -- so the monitor watches until
    // the burst ends. A run nobody else can stop (a blocking call with no
    // timeout) costs the monitor nothing: an idle monitor is woken per
    // burst, and a lingering one polls (issue 18, row 3a). ~QIsle's abort
    // wakes it by itself (watchNow()).
    void watch();
    // Any thread: the monitor watches the thread from now on, until the
    // burst ends (the running request was canceled by another thread).
    void watchNow();

    // Around one request, run on L (the main thread or, nested, a coroutine).
    void begin(RunningRequest &running, lua_State *L);
    void end(RunningRequest &running);
    RunningRequest *current() const { return m_current; }

    // Raises a Lua error when the running request must stop; blocks while it
    // is suspended. For the hook, isle.sleep and host code.
    void checkpoint(lua_State *L);
    // A stop is being raised: guards must not let it be caught.
    bool stopping() const { return m_current && m_current->stop.has_value(); }
    // Whether the running request must stop, without raising.
    std::optional<QIsleError::Kind> pendingStop() const;

    // Raises the stop error (the stop must be known to be pending).
    [[noreturn]] void raiseStop(lua_State *L);

    // isle.emit(): value becomes the running request's next result. A value
    // after a quiet spell (no batch out for ResultWindow) is reported at
    // once; in a flood, values gather into a batch reported once it is
    // ResultWindow old or ResultBatchMax long -- and always before the
    // request reports progress, pauses, waits, yields, nests a blocking
    // request or ends (end()), so results keep their order with progress and
    // the finish, and none is lost. A batch left pending while the script
    // computes on is reported within about ResultWindow: by the hook
    // (hook mode) or by the monitor arming it (signal mode).
    void emitResult(RunningRequest &running, QVariant &&value);
    // Reports the running request's pending batch now (isle.progress, waits).
    void flushResults()
    {
        if (m_current && !m_current->emitted.values.isEmpty())
            flushResults(*m_current);
    }
    static constexpr std::chrono::microseconds ResultWindow{1000};
    static constexpr int ResultBatchMax = 4096;

    // Called by the hook after each look that raised nothing (time slices:
    // it may yield the running coroutine with lua_yield(L, 0)). nullptr: none.
    void setAfterCheck(void (*afterCheck)(lua_State *)) { m_afterCheck = afterCheck; }
    void afterCheck(lua_State *L)
    {
        if (m_afterCheck)
            m_afterCheck(L);
    }

private:
    void flushResults(RunningRequest &running);

    RunningRequest *m_current = nullptr;
    QIsleOptions::StopMode m_mode = QIsleOptions::StopMode::Hook;
    std::unique_ptr<StopSignal> m_signal; // Signal mode
    bool m_inBurst = false;
    void (*m_afterCheck)(lua_State *) = nullptr;
};

// Keeps StopSignal::running() on the coroutine that runs Lua code now.
class RunningScope
{
public:
    explicit RunningScope(lua_State *L) : m_previous(StopSignal::running()) { StopSignal::setRunning(L); }
    ~RunningScope() { StopSignal::setRunning(m_previous); }
    Q_DISABLE_COPY_MOVE(RunningScope)

private:
    lua_State *m_previous;
};
