// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

// What every C++ snippet of README.md and docs/*.md is compiled against
// (tests/docs/README.md): the headers below, and, for statements (```cpp,
// ```cpp run), the names QISLE_DOC_SNIPPET_SCOPE declares.

#include <QIsle/QIsle>
#include <QIsle/QIsleLua>

#include <QtCore>
#include <QtWidgets>

#include <functional>
#include <memory>

// Helpers a snippet may call as if they were the application's own.
QStringList filesUnder(const QString &directory); // every file below directory
qlonglong countIn(const QString &path);            // something counted in one file

// One ```cpp block: body() holds its statements, run by tst_doc_snippets when
// the block says `run`. The object is a QObject in the GUI thread, so
// snippets may write `this` as a context object and call connect().
class DocSnippet : public QObject
{
public:
    enum class Mode { Compile, Run };

    DocSnippet();
    ~DocSnippet() override;
    virtual void body() = 0;

protected:
    std::unique_ptr<QIsle> m_isle;
    QWidget m_window;
    QProgressBar *m_progressBar;
    QPushButton *m_stopButton;
    QPlainTextEdit *m_output;
};

// The names a statement snippet sees, declared before its block. The snippet
// runs in a block of its own, so it may declare the same names itself.
#define QISLE_DOC_SNIPPET_SCOPE                                                                 \
    [[maybe_unused]] std::unique_ptr<QIsle> &isle = m_isle;                                   \
    [[maybe_unused]] QString code = QStringLiteral("isle.progress(1, 2, 'half') "             \
                                                   "isle.emit('partial') return 6 * 7");       \
    [[maybe_unused]] QString script = code;                                                     \
    [[maybe_unused]] QString text = QStringLiteral("1 + 1");                                   \
    [[maybe_unused]] QVariantList rows = {                                                      \
        QVariantMap{{QStringLiteral("name"), QStringLiteral("ada")}, {QStringLiteral("score"), 3}}, \
        QVariantMap{{QStringLiteral("name"), QStringLiteral("bob")}, {QStringLiteral("score"), 5}}, \
    };                                                                                          \
    [[maybe_unused]] QProgressBar *progressBar = m_progressBar;                                 \
    [[maybe_unused]] QPushButton *stopButton = m_stopButton;                                    \
    [[maybe_unused]] QPlainTextEdit *output = m_output;

// One entry a snippet, made by the generated files (file snippets have no factory).
struct DocSnippetRegistration
{
    using Factory = std::function<std::unique_ptr<DocSnippet>()>;
    DocSnippetRegistration(const char *file, int line, DocSnippet::Mode mode, Factory factory);

    QString file; // as given to extract_snippets.cmake: "README.md", "docs/values.md"
    int line;     // the line of the opening ```cpp
    DocSnippet::Mode mode;
    Factory factory;

    static const QList<const DocSnippetRegistration *> &all();
};
