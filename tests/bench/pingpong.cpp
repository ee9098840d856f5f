// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "pingpong.h"

#include "harness.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#if !defined(__cpp_lib_atomic_wait)
#include <climits>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace PingPong {
namespace {

constexpr int WarmUp = 200;

// Runs the caller's side of the exchange pinned, and times only the
// steady-state round trips (not the thread's start or the warm-up).
template<typename Ping, typename Serve>
double timeRoundTrips(int roundTrips, int callerCpu, int otherCpu, Ping ping, Serve serve)
{
    std::thread other([&] {
        Bench::pinCurrentThread(otherCpu);
        serve();
    });
    Bench::pinCurrentThread(callerCpu);
    for (int i = 0; i < WarmUp; ++i)
        ping(false);
    const auto start = Bench::Clock::now();
    for (int i = 0; i < roundTrips; ++i)
        ping(false);
    const double seconds = Bench::secondsSince(start);
    ping(true);
    other.join();
    Bench::pinCurrentThread(-1);
    return seconds * 1e6 / roundTrips;
}

#if !defined(__cpp_lib_atomic_wait)
void futexWait(std::atomic<int> *word, int expected)
{
    syscall(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futexWake(std::atomic<int> *word)
{
    syscall(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}
#endif

enum State : int { Idle = 0, Request = 1, Quit = 2 };

} // namespace

double condvarUs(int roundTrips, int callerCpu, int otherCpu)
{
    std::mutex mutex;
    std::condition_variable cond;
    int state = Idle;
    auto ping = [&](bool quit) {
        std::unique_lock lock(mutex);
        state = quit ? Quit : Request;
        cond.notify_all();
        if (!quit)
            cond.wait(lock, [&] { return state == Idle; });
    };
    auto serve = [&] {
        std::unique_lock lock(mutex);
        for (;;) {
            cond.wait(lock, [&] { return state != Idle; });
            if (state == Quit)
                return;
            state = Idle;
            cond.notify_all();
        }
    };
    return timeRoundTrips(roundTrips, callerCpu, otherCpu, ping, serve);
}

#if defined(__cpp_lib_atomic_wait)
const char *atomicWaitKind()
{
    return "std::atomic::wait (libstdc++: spins, then futex)";
}

double atomicWaitUs(int roundTrips, int callerCpu, int otherCpu)
{
    std::atomic<int> state{Idle};
    auto ping = [&](bool quit) {
        state.store(quit ? Quit : Request);
        state.notify_one();
        if (quit)
            return;
        for (int s; (s = state.load()) != Idle;)
            state.wait(s);
    };
    auto serve = [&] {
        for (;;) {
            state.wait(Idle);
            const int s = state.load();
            if (s == Quit)
                return;
            if (s == Request) {
                state.store(Idle);
                state.notify_one();
            }
        }
    };
    return timeRoundTrips(roundTrips, callerCpu, otherCpu, ping, serve);
}
#else
const char *atomicWaitKind()
{
    return "futex";
}

double atomicWaitUs(int roundTrips, int callerCpu, int otherCpu)
{
    std::atomic<int> state{Idle};
    auto ping = [&](bool quit) {
        state.store(quit ? Quit : Request);
        futexWake(&state);
        if (quit)
            return;
        for (int s; (s = state.load()) != Idle;)
            futexWait(&state, s);
    };
    auto serve = [&] {
        for (;;) {
            int s;
            while ((s = state.load()) == Idle)
                futexWait(&state, Idle);
            if (s == Quit)
                return;
            state.store(Idle);
            futexWake(&state);
        }
    };
    return timeRoundTrips(roundTrips, callerCpu, otherCpu, ping, serve);
}
#endif

} // namespace PingPong
