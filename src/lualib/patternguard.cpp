// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "lualib/patternguard_p.h"

#include "luautil/stackguard_p.h"
#include "isle/worker_p.h"

#include <atomic>
#include <cctype>
#include <cstring>

namespace {

constexpr int MaxCaptures = 32;  // LUA_MAXCAPTURES, as Lua's matcher
constexpr int MaxDepth = 200;                // Lua's MAXCCALLS for patterns
constexpr unsigned StepsBetweenChecks = 4096;
constexpr ptrdiff_t Unfinished = -1;
constexpr ptrdiff_t Position = -2;

// The probe cannot follow this pattern: leave it to Lua's matcher.
struct GiveUp
{
};

// A walk through the same search Lua's matcher makes (lstrlib.c's rules for
// Lua patterns, as the reference manual, section 6.4.1, states them), which
// only tells whether it ends; it counts its steps and looks for a stop.
class Probe
{
public:
    Probe(lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
        : m_L(L), m_stop(StopControl::from(L)), m_srcInit(s), m_srcEnd(s + ls), m_patEnd(p + lp)
    {
    }

    const char *matchAt(const char *s, const char *p)
    {
        m_level = 0;
        m_depth = MaxDepth;
        return match(s, p);
    }
    const char *srcInit() const { return m_srcInit; }
    const char *srcEnd() const { return m_srcEnd; }

private:
    void step()
    {
        if (++m_steps % StepsBetweenChecks == 0)
            m_stop.checkpoint(m_L); // raises the stop as a Lua error
    }

    const char *classEnd(const char *p) const
    {
        const char c = *p++;
        if (c == '%') {
            if (p >= m_patEnd)
                throw GiveUp{};
            return p + 1;
        }
        if (c == '[') {
            if (*p == '^')
                ++p;
            do {
                if (p >= m_patEnd)
                    throw GiveUp{};
                if (*(p++) == '%' && p < m_patEnd)
                    ++p;
            } while (*p != ']');
            return p + 1;
        }
        return p;
    }

    static bool matchClass(int c, int cl)
    {
        bool res;
        switch (std::tolower(cl)) {
        case 'a': res = std::isalpha(c); break;
        case 'c': res = std::iscntrl(c); break;
        case 'd': res = std::isdigit(c); break;
        case 'g': res = std::isgraph(c); break;
        case 'l': res = std::islower(c); break;
        case 'p': res = std::ispunct(c); break;
        case 's': res = std::isspace(c); break;
        case 'u': res = std::isupper(c); break;
        case 'w': res = std::isalnum(c); break;
        case 'x': res = std::isxdigit(c); break;
        default: return cl == c;
        }
        return std::isupper(cl) ? !res : res;
    }

    static bool matchBracket(int c, const char *p, const char *ec)
    {
        bool sig = true;
        if (*(p + 1) == '^') {
            sig = false;
            ++p;
        }
        while (++p < ec) {
            if (*p == '%') {
                ++p;
                if (matchClass(c, uchar(*p)))
                    return sig;
            } else if (*(p + 1) == '-' && p + 2 < ec) {
                p += 2;
                if (uchar(*(p - 2)) <= c && c <= uchar(*p))
                    return sig;
            } else if (uchar(*p) == c) {
                return sig;
            }
        }
        return !sig;
    }

    bool singleMatch(const char *s, const char *p, const char *ep) const
    {
        if (s >= m_srcEnd)
            return false;
        const int c = uchar(*s);
        switch (*p) {
        case '.': return true;
        case '%': return matchClass(c, uchar(*(p + 1)));
        case '[': return matchBracket(c, p, ep - 1);
        default: return uchar(*p) == c;
        }
    }

    const char *match(const char *s, const char *p)
    {
        if (m_depth-- == 0)
            throw GiveUp{}; // Lua says "pattern too complex"
        step();
        for (;;) {
            if (p == m_patEnd)
                break;
            if (*p == '(') {
                s = *(p + 1) == ')' ? startCapture(s, p + 2, Position) : startCapture(s, p + 1, Unfinished);
                break;
            }
            if (*p == ')') {
                s = endCapture(s, p + 1);
                break;
            }
            if (*p == '$' && p + 1 == m_patEnd) {
                s = s == m_srcEnd ? s : nullptr;
                break;
            }
            if (*p == '%' && *(p + 1) == 'b') {
                s = matchBalance(s, p + 2);
                if (!s)
                    break;
                p += 4;
                continue;
            }
            if (*p == '%' && *(p + 1) == 'f') {
                p += 2;
                if (*p != '[')
                    throw GiveUp{};
                const char *ep = classEnd(p);
                const int previous = s == m_srcInit ? '\0' : uchar(*(s - 1));
                const int current = s < m_srcEnd ? uchar(*s) : '\0';
                if (!matchBracket(previous, p, ep - 1) && matchBracket(current, p, ep - 1)) {
                    p = ep;
                    continue;
                }
                s = nullptr;
                break;
            }
            if (*p == '%' && std::isdigit(uchar(*(p + 1)))) {
                s = matchCapture(s, uchar(*(p + 1)));
                if (!s)
                    break;
                p += 2;
                continue;
            }
            const char *ep = classEnd(p);
            const char quantifier = ep < m_patEnd ? *ep : '\0';
            if (!singleMatch(s, p, ep)) {
                if (quantifier == '*' || quantifier == '?' || quantifier == '-') {
                    p = ep + 1;
                    continue;
                }
                s = nullptr;
                break;
            }
            if (quantifier == '?') {
                if (const char *res = match(s + 1, ep + 1)) {
                    s = res;
                    break;
                }
                p = ep + 1;
                continue;
            }
            if (quantifier == '+') {
                s = maxExpand(s + 1, p, ep);
                break;
            }
            if (quantifier == '*') {
                s = maxExpand(s, p, ep);
                break;
            }
            if (quantifier == '-') {
                s = minExpand(s, p, ep);
                break;
            }
            ++s;
            p = ep;
        }
        ++m_depth;
        return s;
    }

    const char *maxExpand(const char *s, const char *p, const char *ep)
    {
        ptrdiff_t i = 0;
        while (singleMatch(s + i, p, ep)) {
            ++i;
            step();
        }
        for (; i >= 0; --i) {
            if (const char *res = match(s + i, ep + 1))
                return res;
        }
        return nullptr;
    }

    const char *minExpand(const char *s, const char *p, const char *ep)
    {
        for (;;) {
            if (const char *res = match(s, ep + 1))
                return res;
            if (!singleMatch(s, p, ep))
                return nullptr;
            ++s;
        }
    }

    const char *startCapture(const char *s, const char *p, ptrdiff_t what)
    {
        if (m_level >= MaxCaptures)
            throw GiveUp{};
        m_capture[m_level] = {s, what};
        ++m_level;
        const char *res = match(s, p);
        if (!res)
            --m_level;
        return res;
    }

    const char *endCapture(const char *s, const char *p)
    {
        int l = m_level - 1;
        while (l >= 0 && m_capture[l].length != Unfinished)
            --l;
        if (l < 0)
            throw GiveUp{};
        m_capture[l].length = s - m_capture[l].init;
        const char *res = match(s, p);
        if (!res)
            m_capture[l].length = Unfinished;
        return res;
    }

    const char *matchCapture(const char *s, int digit)
    {
        const int l = digit - '1';
        if (l < 0 || l >= m_level || m_capture[l].length == Unfinished)
            throw GiveUp{};
        const ptrdiff_t length = m_capture[l].length;
        if (length >= 0 && m_srcEnd - s >= length && std::memcmp(m_capture[l].init, s, size_t(length)) == 0)
            return s + length;
        return nullptr;
    }

    const char *matchBalance(const char *s, const char *p)
    {
        if (p >= m_patEnd - 1)
            throw GiveUp{};
        if (s >= m_srcEnd || *s != *p)
            return nullptr;
        const char open = *p;
        const char close = *(p + 1);
        int depth = 1;
        while (++s < m_srcEnd) {
            step();
            if (*s == close) {
                if (--depth == 0)
                    return s + 1;
            } else if (*s == open) {
                ++depth;
            }
        }
        return nullptr;
    }

    static int uchar(char c) { return static_cast<unsigned char>(c); }

    lua_State *m_L;
    StopControl &m_stop;
    const char *m_srcInit;
    const char *m_srcEnd;
    const char *m_patEnd;
    int m_level = 0;
    int m_depth = MaxDepth;
    unsigned m_steps = 0;
    struct
    {
        const char *init;
        ptrdiff_t length;
    } m_capture[MaxCaptures];
};

enum class Function { Find, Match, Gmatch, Gsub };

// Cheap enough without a probe: a search makes at most about
// starts x pattern length x C(ls + k, k) steps, k the items that backtrack
// (ways to share the subject among them). Below the budget (some
// milliseconds of matching) the stop can wait for the search to end.
bool isCheap(size_t ls, const char *p, size_t lp)
{
    int variable = 0;
    for (size_t i = 0; i < lp; ++i) {
        if (p[i] == '%') {
            if (i + 1 < lp && p[i + 1] == 'b')
                ++variable;
            ++i;
        } else if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?') {
            ++variable;
        }
    }
    constexpr double Budget = 1e7;
    double work = double(ls + 1) * double(lp + 1);
    for (int i = 1; i <= variable && work <= Budget; ++i)
        work = work * double(ls + i) / double(i);
    return work <= Budget;
}

// string.find's and gmatch's start position (lstrlib.c's posrelatI).
size_t startIndex(lua_Integer pos, size_t length)
{
    if (pos > 0)
        return size_t(pos);
    if (pos == 0 || pos < -lua_Integer(length))
        return 1;
    return size_t(lua_Integer(length) + pos + 1);
}

bool hasSpecials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; ++i) {
        if (std::strchr("^$*+?.([%-", p[i]))
            return true;
    }
    return false;
}

void probe(lua_State *L, Function function)
{
    size_t ls = 0;
    size_t lp = 0;
    const char *s = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER ? lua_tolstring(L, 1, &ls) : nullptr;
    const char *p = lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER ? lua_tolstring(L, 2, &lp) : nullptr;
    if (!s || !p || isCheap(ls, p, lp))
        return; // bad arguments too: Lua's function says what is wrong
    if (function == Function::Find && (lua_toboolean(L, 4) || !hasSpecials(p, lp)))
        return; // a plain search, not the matcher
    try {
        Probe probe(L, s, ls, p, lp);
        if (function == Function::Find || function == Function::Match || function == Function::Gmatch) {
            int isInteger = 0;
            const lua_Integer start = lua_tointegerx(L, 3, &isInteger);
            const size_t init = startIndex(isInteger ? start : 1, ls) - 1;
            if (init > ls)
                return;
            const char *s1 = s + init;
            if (function == Function::Gmatch) {
                // Every match of the loop, as if it ran to the end.
                const char *lastMatch = nullptr;
                const char *src = s1;
                while (src <= probe.srcEnd()) {
                    const char *e = probe.matchAt(src, p);
                    if (e && e != lastMatch)
                        src = lastMatch = e; // the next call of the iterator starts here
                    else
                        ++src;
                }
                return;
            }
            const bool anchor = *p == '^';
            const char *pattern = anchor ? p + 1 : p;
            do {
                if (probe.matchAt(s1, pattern))
                    return;
            } while (s1++ < probe.srcEnd() && !anchor);
            return;
        }
        // gsub
        const bool anchor = *p == '^';
        const char *pattern = anchor ? p + 1 : p;
        int isInteger = 0;
        const lua_Integer given = lua_tointegerx(L, 4, &isInteger);
        const lua_Integer maxReplacements = isInteger ? given : lua_Integer(ls + 1);
        const char *src = s;
        const char *lastMatch = nullptr;
        lua_Integer n = 0;
        while (n < maxReplacements) {
            const char *e = probe.matchAt(src, pattern);
            if (e && e != lastMatch) {
                ++n;
                src = lastMatch = e;
            } else if (src < probe.srcEnd()) {
                ++src;
            } else {
                break;
            }
            if (anchor)
                break;
        }
    } catch (const GiveUp &) {
        // Lua's matcher raises its own error for what the probe cannot follow.
    }
}

// Lua's own functions (the same C functions in every VM of the process).
std::atomic<lua_CFunction> originals[4] = {};

// Lua's function runs in this frame, on these arguments: no second call
// level, and its errors name this function ("bad argument #1 to 'find'").
// The wrappers are light C functions, as Lua's are: no upvalue leads to the
// unguarded original.
template<Function F>
int guarded(lua_State *L)
{
    probe(L, F);
    return originals[int(F)].load(std::memory_order_relaxed)(L);
}

} // namespace

void PatternGuard::install(lua_State *L)
{
    StackGuard guard(L);
    if (lua_getglobal(L, LUA_STRLIBNAME) == LUA_TTABLE) {
        const struct { const char *name; Function function; lua_CFunction wrapper; } wrapped[] = {
            {"find", Function::Find, guarded<Function::Find>},
            {"match", Function::Match, guarded<Function::Match>},
            {"gmatch", Function::Gmatch, guarded<Function::Gmatch>},
            {"gsub", Function::Gsub, guarded<Function::Gsub>},
        };
        for (const auto &w : wrapped) {
            const lua_CFunction original = lua_getfield(L, -1, w.name) == LUA_TFUNCTION ? lua_tocfunction(L, -1) : nullptr;
            lua_pop(L, 1);
            if (!original)
                continue;
            originals[int(w.function)].store(original, std::memory_order_relaxed);
            lua_pushcfunction(L, w.wrapper);
            lua_setfield(L, -2, w.name);
        }
    }
    lua_pop(L, 1);
}
