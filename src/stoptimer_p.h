// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QtCore/qglobal.h>

#include <lua.hpp>

#include <chrono>

// The clock of signal stop mode: while a burst of requests runs, a per-thread
// POSIX timer sends the Lua thread SIGURG every interval; the handler arms a
// one-shot count hook on the coroutine running now (lua_sethook is written to
// be called from a signal handler: lua.c arms its Ctrl-C hook this way). The
// hook looks at the running request and disarms itself, so scripts run with
// no hook at all in between.
//
// A late signal can only make the hook look once more at whatever runs then:
// it carries no request, so it can never stop the wrong one.
//
// Lua thread only (the handler runs on the Lua thread too).
class StopTimer
{
public:
    // Whether signal mode can work here: Linux with per-thread timers, not
    // ThreadSanitizer (it holds signals back until the next libc call, which
    // a pure Lua loop never makes), and QISLE_STOP_MODE is not "hook".
    static bool signalsAvailable();

    // Creates the timer for the calling thread; armedHook is what the signal
    // arms.
    StopTimer(std::chrono::microseconds interval, lua_Hook armedHook);
    ~StopTimer();
    Q_DISABLE_COPY_MOVE(StopTimer)

    bool isValid() const { return m_valid; }
    void start();
    void stop();

    // The coroutine the next signal arms (nullptr: none). Kept in
    // initial-exec TLS so the handler can read it.
    static void setRunning(lua_State *L);
    static lua_State *running();

private:
    std::chrono::microseconds m_interval;
    void *m_timer = nullptr; // timer_t
    bool m_valid = false;
    bool m_started = false;
};
