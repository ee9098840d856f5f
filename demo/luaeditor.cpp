// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "luaeditor.h"

#include <QtGui/QFontDatabase>

namespace {
enum Margin { LineNumbers = 0, Markers = 1 };
}

LuaEditor::LuaEditor(QWidget *parent) : QsciScintilla(parent)
{
    const QFont font = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    auto *lexer = new QsciLexerLua(this);
    lexer->setDefaultFont(font);
    lexer->setFont(font, -1); // every style
    setLexer(lexer);
    setUtf8(true);

    setMarginType(LineNumbers, QsciScintilla::NumberMargin);
    setMarginLineNumbers(LineNumbers, true);
    setMarginWidth(LineNumbers, QStringLiteral("0000"));
    setMarginMarkerMask(LineNumbers, 0);

    m_errorSymbol = markerDefine(QsciScintilla::Circle);
    setMarkerBackgroundColor(QColor(0xd0, 0x30, 0x30), m_errorSymbol);
    setMarkerForegroundColor(QColor(0x90, 0x10, 0x10), m_errorSymbol);
    m_errorBackground = markerDefine(QsciScintilla::Background);
    setMarkerBackgroundColor(QColor(0xff, 0xdc, 0xdc), m_errorBackground);
    setMarginType(Markers, QsciScintilla::SymbolMargin);
    setMarginWidth(Markers, 16);
    setMarginMarkerMask(Markers, 1 << m_errorSymbol);

    setAutoIndent(true);
    setIndentationsUseTabs(false);
    setIndentationWidth(2);
    setTabWidth(2);
    setBraceMatching(QsciScintilla::SloppyBraceMatch);
    // A horizontal scroll bar only when a line is wider than the view.
    SendScintilla(SCI_SETSCROLLWIDTH, 1);
    SendScintilla(SCI_SETSCROLLWIDTHTRACKING, 1);
    setCaretLineVisible(true);
    setCaretLineBackgroundColor(QColor(0xf4, 0xf4, 0xf8));
}

void LuaEditor::markError(int line)
{
    clearError();
    if (line < 1 || line > lines())
        return;
    markerAdd(line - 1, m_errorSymbol);
    markerAdd(line - 1, m_errorBackground);
    ensureLineVisible(line - 1);
}

void LuaEditor::clearError()
{
    markerDeleteAll(m_errorSymbol);
    markerDeleteAll(m_errorBackground);
}

int LuaEditor::errorLine() const
{
    // markerFindNext is not const in QScintilla; it only reads.
    const int line = const_cast<LuaEditor *>(this)->markerFindNext(0, 1 << m_errorSymbol);
    return line < 0 ? -1 : line + 1;
}
