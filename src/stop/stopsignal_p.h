// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/qglobal.h>

#include <QIsle/QIsleLua>

#include <chrono>
#include <functional>
#include <memory>

struct StopWatch;

// Signal stop mode, the Lua thread's side. Scripts run with no hook at all.
// While requests run, the StopMonitor thread looks at the running request;
// only when it must stop, pause or time out does the monitor send the Lua
// thread SIGURG, whose handler arms a one-shot count hook on the coroutine
// running now (lua_sethook is written to be called from a signal handler:
// lua.c arms its Ctrl-C hook this way). The hook looks and disarms itself.
//
// A late signal only makes the hook look once more at whatever runs then: it
// carries no request, so it can never stop the wrong one.
//
// Lua thread only (the handler runs on the Lua thread too).
class StopSignal
{
public:
    // Whether signal mode can work here: Linux, and not ThreadSanitizer (it
    // holds signals back until the next libc call, which a pure Lua loop
    // never makes).
    static bool supported();
    // What StopMode::Automatic picks: supported(), and QISLE_STOP_MODE is
    // not "hook".
    static bool preferred();
    // supported(), and the process's handler for the stop signal installed
    // (the first call installs it; any thread).
    static bool available();

    // Registers the calling thread with the monitor. stopPending is asked on
    // the monitor's thread every interval while requests run.
    StopSignal(std::chrono::microseconds interval, lua_Hook armedHook, std::function<bool()> stopPending);
    ~StopSignal();
    Q_DISABLE_COPY_MOVE(StopSignal)

    bool isValid() const { return bool(m_watch); }
    // Requests run / the thread is idle: the monitor watches only between.
    void start();
    void stop();
    // Any thread: as start(), until the thread's next stop().
    void startFromAnyThread();

    // Results wait to be reported from `at` (isle.emit's batch): the monitor
    // signals the thread from then on, as for a stop, so the hook reports
    // them. time_point::max(): none.
    void setFlushAt(std::chrono::steady_clock::time_point at);

    // The coroutine the next signal arms (nullptr: none). Kept in
    // initial-exec TLS so the handler can read it.
    static void setRunning(lua_State *L);
    static lua_State *running();

private:
    std::unique_ptr<StopWatch> m_watch;
    bool m_started = false;
};
