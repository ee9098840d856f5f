// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include "request_p.h"

#include <lua.hpp>

#include <chrono>
#include <optional>

// What the stop machinery knows of one running request. Requests nest when a
// blocking call is made on the Lua thread itself (it runs inline).
struct RunningRequest
{
    Request *request = nullptr;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    RunningRequest *outer = nullptr;
    std::optional<QIsleError::Kind> stop; // set once the stop is being raised
    int nextResultIndex = 1;              // isle.emit(): result 0 is the return value
};

// The stop machinery: a count hook that asks whether the running request must
// stop (cancel, timeout) or pause (suspend), and guards that keep a script
// from swallowing the stop (pcall, xpcall, coroutine.resume).
//
// Lua thread only.
class StopControl
{
public:
    // Installs the hook on the main thread (coroutines inherit it) and
    // replaces pcall, xpcall and coroutine.resume with stop-aware versions.
    void install(lua_State *L, int hookInterval);

    void begin(RunningRequest &running);
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

private:
    RunningRequest *m_current = nullptr;
    int m_hookInterval = 1000;
};
