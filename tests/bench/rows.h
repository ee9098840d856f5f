// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// The table's rows, one group a file, numbered as in the benchmark issue.

#include "harness.h"

class QIsle;

namespace Rows {

// The CPUs the comparisons pin to: caller and the other thread apart, or both
// on one CPU. On a one-CPU machine "apart" is the same CPU.
int callerCpu();
int otherCpu();

// Pins the isle's Lua thread, from inside an exec closure.
void pinIsle(QIsle &isle, int cpu);

void calls(Bench::Table &table);      // rows 1-6: round trips and pipelines
void isleCosts(Bench::Table &table);  // row 7: cancel, hook, spawn, RSS
void heartbeat(Bench::Table &table);  // row 8: the main thread's timer gap
void values(Bench::Table &table);     // row 9: QVariant <-> Lua
void memory(Bench::Table &table);     // row 10: allocator, timeout precision
void objects(Bench::Table &table);    // row 13: QObjects in Lua vs QJSEngine, calls into the GUI thread
void pool(Bench::Table &table);       // row 11: QIslePool throughput, dispatch, leases
void async(Bench::Table &table);      // row 12: requests as coroutines, waits, tasks, channels

} // namespace Rows
