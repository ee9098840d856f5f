// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qisleoptions.h
/// \brief QIsleOptions (per isle) and QIsleRequestOptions (per request).

#include <QIsle/qisleglobal.h>

#include <QtCore/QFlags>
#include <QtCore/QString>

#include <chrono>

/// How an isle is set up. A plain struct: fill in what you need.
struct QIsleOptions
{
    /// Lua's standard libraries, one flag each; combine them freely or take
    /// a preset (DefaultLibraries, SandboxLibraries, AllLibraries).
    enum Library : unsigned {
        Base = 0x001,      ///< print, pairs, pcall, load (text only), ...
        Coroutine = 0x002, ///< coroutine
        Table = 0x004,     ///< table
        String = 0x008,    ///< string.dump is refused in every preset
        Utf8 = 0x010,      ///< utf8
        Math = 0x020,      ///< math
        Io = 0x040,        ///< io
        Os = 0x080,        ///< os.exit is never available
        Package = 0x100,   ///< require; C loaders are removed
        Debug = 0x200,     ///< debug.sethook cannot remove the cancel hook
    };
    /// A combination of Library flags.
    Q_DECLARE_FLAGS(Libraries, Library)

    /// For trusted scripts: everything but debug.
    static constexpr Libraries DefaultLibraries = Libraries(Base) | Coroutine | Table | String
            | Utf8 | Math | Io | Os | Package;
    /// For untrusted scripts: no io, os, package, debug; no dofile/loadfile/require.
    static constexpr Libraries SandboxLibraries = Libraries(Base) | Coroutine | Table | String
            | Utf8 | Math;
    /// Everything, debug included.
    static constexpr Libraries AllLibraries = DefaultLibraries | Debug;

    /// How a running script learns that it must stop, pause or time out.
    enum class StopMode {
        /// Signal where the platform allows it (Linux, not under
        /// ThreadSanitizer, QISLE_STOP_MODE not set to "hook"), else Hook.
        Automatic,
        /// Scripts run with no Lua hook at all, at full speed. While requests
        /// run, a monitor thread looks at them every stopPollInterval; only a
        /// request that must stop or pause gets a signal (SIGURG, chained to
        /// any previous handler) that arms a one-shot hook on its thread.
        /// Where it cannot work (not Linux, ThreadSanitizer), Hook is used.
        Signal,
        /// An always-on count hook every hookInterval instructions. Portable;
        /// costs CPU-bound scripts about half their speed.
        Hook,
    };
    /// How this isle stops scripts (QIsle::stopMode() tells what Automatic chose).
    StopMode stopMode = StopMode::Automatic;
    /// Signal mode: how often the monitor looks at a running request; bounds
    /// the latency of cancel(), suspend() and timeouts.
    std::chrono::microseconds stopPollInterval{250};
    /// Hook mode: instructions between two checks.
    int hookInterval = 1000;
    /// Bytes the VM may allocate; 0 = no limit. Past it, allocation fails
    /// with Lua's memory error (QIsleError::Kind::Memory).
    qsizetype memoryLimit = 0;
    /// Longest a single request may run, counted from its start; 0 = none.
    std::chrono::milliseconds timeout{0};
    /// Which standard libraries a script sees (DefaultLibraries by default).
    Libraries libraries = DefaultLibraries;
    /// Name of the VM's QThread (its objectName; Qt passes it to the OS thread).
    QString threadName = QStringLiteral("QIsle");
    /// Requests that may wait in the queue; 0 = unbounded. Past it spawn*()
    /// returns a future that already failed with QIsleError::Kind::Busy.
    int maxPending = 0;
    /// How long shutdown() and ~QIsle() wait for the VM to close once no
    /// request runs any more. Only a finalizer (__gc) that never returns takes
    /// longer: past this the VM is abandoned on its thread, with a warning.
    std::chrono::milliseconds shutdownTimeout{2000};
    /// Low-latency option: how long the Lua thread keeps looking for the next
    /// request before it sleeps, and a blocking caller for its answer before
    /// it sleeps. Waking a sleeping thread costs tens of microseconds on
    /// virtual machines; spinning makes back-to-back blocking calls several
    /// times faster, at the price of up to this much busy CPU on both threads
    /// after each request. 0 (the default) never spins.
    std::chrono::microseconds lowLatencySpin{0};
    /// How many requests may be in progress on the VM at once. A request
    /// that waits (an async host function's future, isle.sleep, a task, a
    /// channel) is suspended and the Lua thread is free meanwhile.
    /// 1 (the default): one after another in queue order; a waiting request
    /// keeps the VM's turn. 0: no limit. Above 1, a waiting request lets the
    /// next queued one start; requests interleave only at their waits (and
    /// at time slices). A request submitted by code running for a waiting
    /// request (a child) may run while its parent waits, whatever this is.
    int maxConcurrentRequests = 1;
    /// Turns for CPU-bound scripts; 0 (the default) = off. When other
    /// requests or tasks are ready to run, a request or task that ran this
    /// long without waiting is paused at its next instruction and continues
    /// after them (at a place where it could wait; inside a C function such
    /// as table.sort it runs on). Armed through the stop machinery: scripts
    /// run at full speed while nobody else is ready.
    std::chrono::milliseconds timeSlice{0};
};

Q_DECLARE_OPERATORS_FOR_FLAGS(QIsleOptions::Libraries)

/// Per-request settings for the spawnEval/eval/... overloads that take them.
struct QIsleRequestOptions
{
    /// Longest this request may run, counted from its start: -1 = the isle's
    /// QIsleOptions::timeout, 0 = none, else this.
    std::chrono::milliseconds timeout{-1};
    /// The chunk name of an eval/spawnEval chunk, with Lua's load()
    /// convention: "@scripts/a.lua" names a file (errors read
    /// "scripts/a.lua:3: ..."), "=name" is used as is ("name:3: ..."),
    /// anything else is source text ([string "..."]). Empty means "=eval".
    /// Scripts see it in error strings, tracebacks and debug.getinfo().source.
    QString chunkName;
};
