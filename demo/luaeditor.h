// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// QScintilla's headers use the `signals`/`slots` keywords that QT_NO_KEYWORDS
// turns off: map them to the macros for these headers only.
#define signals Q_SIGNALS
#define slots Q_SLOTS
#include <Qsci/qscilexerlua.h>
#include <Qsci/qsciscintilla.h>
#undef signals
#undef slots

// The script editor: Lua highlighting, line numbers, a marker margin for the
// line a run failed on, auto-indent and brace matching.
class LuaEditor : public QsciScintilla
{
    Q_OBJECT
public:
    explicit LuaEditor(QWidget *parent = nullptr);

    // Marks a 1-based line as the error line (margin symbol and background)
    // and scrolls to it; clearError() removes the mark.
    void markError(int line);
    void clearError();
    // The marked line (1-based), -1 when none.
    int errorLine() const;

private:
    int m_errorSymbol = -1;
    int m_errorBackground = -1;
};
