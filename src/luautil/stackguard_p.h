// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
//  W A R N I N G
//  This file is not part of the QIsle API: an implementation detail that may
//  change without notice.
#pragma once

#include <QIsle/QIsleLua>

#include <QtCore/qglobal.h>

#include <exception>

// Debug builds check that a scope leaves the Lua stack as it found it (plus
// `expected` values). Skipped while unwinding: an error may leave anything.
class StackGuard
{
public:
    explicit StackGuard(lua_State *L, int expected = 0)
#ifndef NDEBUG
        : m_L(L), m_top(lua_gettop(L) + expected), m_exceptions(std::uncaught_exceptions())
#endif
    {
        Q_UNUSED(L);
        Q_UNUSED(expected);
    }
#ifndef NDEBUG
    ~StackGuard()
    {
        if (std::uncaught_exceptions() == m_exceptions)
            Q_ASSERT_X(lua_gettop(m_L) == m_top, "StackGuard", "unbalanced Lua stack");
    }
#endif
    Q_DISABLE_COPY_MOVE(StackGuard)

private:
#ifndef NDEBUG
    lua_State *m_L;
    int m_top;
    int m_exceptions;
#endif
};
