// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "stoptimer_p.h"

#include <QtCore/QtGlobal>

#include <algorithm>
#include <cerrno>
#include <mutex>

#if defined(Q_OS_LINUX)
#  include <csignal>
#  include <cstdlib>
#  include <cstring>
#  include <ctime>
#  include <sys/syscall.h>
#  include <unistd.h>
#  define QISLE_HAVE_STOP_SIGNAL 1
#endif

#if defined(__SANITIZE_THREAD__)
#  define QISLE_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define QISLE_TSAN 1
#  endif
#endif

namespace {

// Initial-exec: reading it from a signal handler must not allocate. (A
// library loaded with dlopen still gets it from glibc's static TLS surplus.)
thread_local lua_State *volatile t_running __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local lua_Hook t_armedHook __attribute__((tls_model("initial-exec"))) = nullptr;
// The Lua thread's timer, and whether it ticks: the handler schedules the
// next tick. (A timer_t may be 0: the first timer of a process is.)
thread_local void *t_timer __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local volatile bool t_ticking __attribute__((tls_model("initial-exec"))) = false;
thread_local long long t_intervalNs __attribute__((tls_model("initial-exec"))) = 0;

#ifdef QISLE_HAVE_STOP_SIGNAL
constexpr int StopSignal = SIGURG; // rarely used by applications; chained if it is
int g_tag;                         // its address marks our timer's signals
struct sigaction g_previous;

long long monotonicNs()
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

void scheduleTick(timer_t timer, long long ns)
{
    struct itimerspec spec;
    std::memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = time_t(ns / 1000000000);
    spec.it_value.tv_nsec = long(ns % 1000000000);
    timer_settime(timer, 0, &spec, nullptr);
}

// Only async-signal-safe calls here: lua_sethook (made for it),
// clock_gettime and timer_settime.
void onStopSignal(int signal, siginfo_t *info, void *context)
{
    if (info && info->si_code == SI_TIMER && info->si_value.sival_ptr == &g_tag) {
        const int savedErrno = errno;
        const long long start = monotonicNs();
        if (lua_State *L = t_running; L && t_armedHook)
            lua_sethook(L, t_armedHook, LUA_MASKCOUNT, 1);
        // lua_sethook walks every call frame of the coroutine: on a very deep
        // stack it is slow. Backing off keeps it under ~1/8 of the thread's
        // time, so such a script still runs (to its stack overflow) and
        // stops, instead of doing nothing but arming hooks.
        if (t_ticking) {
            const long long spent = monotonicNs() - start;
            scheduleTick(timer_t(t_timer), std::max(t_intervalNs, 8 * spent));
        }
        errno = savedErrno;
        return;
    }
    // Not ours: whoever had the signal before us gets it.
    if (g_previous.sa_flags & SA_SIGINFO) {
        if (g_previous.sa_sigaction)
            g_previous.sa_sigaction(signal, info, context);
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(signal);
    }
}

bool installHandler()
{
    static std::once_flag once;
    static bool installed = false;
    std::call_once(once, [] {
        struct sigaction action;
        std::memset(&action, 0, sizeof action);
        action.sa_sigaction = onStopSignal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        installed = sigaction(StopSignal, &action, &g_previous) == 0;
    });
    return installed;
}
#endif

} // namespace

bool StopTimer::signalsAvailable()
{
#if defined(QISLE_HAVE_STOP_SIGNAL) && !defined(QISLE_TSAN)
    const char *mode = std::getenv("QISLE_STOP_MODE");
    return !(mode && std::strcmp(mode, "hook") == 0);
#else
    return false;
#endif
}

StopTimer::StopTimer(std::chrono::microseconds interval, lua_Hook armedHook)
    : m_interval(interval.count() > 0 ? interval : std::chrono::microseconds(250))
{
    t_armedHook = armedHook;
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!installHandler())
        return;
    struct sigevent event;
    std::memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = StopSignal;
    event.sigev_value.sival_ptr = &g_tag;
    event._sigev_un._tid = pid_t(syscall(SYS_gettid));
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &event, &timer) == 0) {
        m_timer = timer;
        m_valid = true;
    }
#endif
}

StopTimer::~StopTimer()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (m_valid)
        timer_delete(timer_t(m_timer));
#endif
    t_running = nullptr;
    t_armedHook = nullptr;
}

// One-shot ticks, each scheduled by the handler of the one before.
void StopTimer::start()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!m_valid || m_started)
        return;
    m_started = true;
    t_intervalNs = std::chrono::nanoseconds(m_interval).count();
    t_timer = m_timer;
    t_ticking = true;
    scheduleTick(timer_t(m_timer), t_intervalNs);
#endif
}

void StopTimer::stop()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!m_valid || !m_started)
        return;
    m_started = false;
    t_ticking = false; // first: a tick in between must not schedule another
    scheduleTick(timer_t(m_timer), 0);
#endif
}

void StopTimer::setRunning(lua_State *L)
{
    t_running = L;
}

lua_State *StopTimer::running()
{
    return t_running;
}
