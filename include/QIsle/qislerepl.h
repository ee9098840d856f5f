// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qislerepl.h
/// \brief Console input classification, as Lua's own REPL does it.

#include <QIsle/qisleglobal.h>

#include <QtCore/QString>

/// What a console should do with a line (or lines) the user typed.
struct QIsleReplInput
{
    /// What the input is.
    enum class Kind {
        Expression,  ///< a bare expression: evaluate chunk ("return <input>") and show the value
        Statements,  ///< a complete chunk: evaluate chunk (the input as it is)
        Incomplete,  ///< the chunk ends too early (an open block, string or call): wait for more lines
        SyntaxError, ///< not Lua: show error (line is set)
    };
    Kind kind;     ///< what the input is
    QString chunk; ///< what to evaluate: "return <input>" or the input
    QString error; ///< SyntaxError: Lua's message, without the chunk name and line
    int line = -1; ///< SyntaxError: 1-based line in the input
};

/// Classifies console input as Lua's own REPL (lua.c) does: try
/// `return <input>` first so bare expressions print; a syntax error ending in
/// `<eof>` means "needs more input". Compiles only (a throwaway lua_State on the
/// calling thread); never runs the input.
QISLE_EXPORT QIsleReplInput qisleClassifyInput(const QString &input);
