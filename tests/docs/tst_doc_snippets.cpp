// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// The C++ snippets of README.md and docs/*.md (tests/docs/README.md). That
// they compile is checked by building this test; here:
//  - every ```cpp block of the Markdown really was compiled (none skipped by
//    an indented or misspelt fence);
//  - every relative link of the prose resolves, anchors included;
//  - the blocks marked `run` run: each in a fresh DocSnippet (a new isle), then
//    the event loop turns so continuations and queued signals are delivered.
// QISLE_DOC_SNIPPETS=<file> (e.g. docs/values.md) limits them to one file;
// CTest runs one test a file that way (doc_snippets:<file>).

#include "docsnippet.h"

#include <QtTest>

Q_DECLARE_METATYPE(const DocSnippetRegistration *)

class tst_DocSnippets : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void everyBlockIsCompiled_data();
    void everyBlockIsCompiled();
    void linksResolve_data() { everyBlockIsCompiled_data(); }
    void linksResolve();
    void run_data();
    void run();

private:
    static QStringList files();
    static QStringList readLines(const QString &file);
    static QSet<QString> anchors(const QStringList &lines);
};

// The lines of a Markdown file of the source tree, with the text inside code
// fences blanked (it is code, not prose).
QStringList tst_DocSnippets::readLines(const QString &file)
{
    QFile markdown(QStringLiteral(QISLE_SOURCE_DIR "/") + file);
    if (!markdown.open(QIODevice::ReadOnly))
        return {};
    QStringList lines = QString::fromUtf8(markdown.readAll()).split(QLatin1Char('\n'));
    static const QRegularExpression opening(QStringLiteral(R"(^\s*(`{3,}|~{3,}))"));
    QString fence;
    for (QString &line : lines) {
        if (!fence.isEmpty()) {
            if (line.trimmed() == fence)
                fence.clear();
            line.clear();
            continue;
        }
        const QRegularExpressionMatch m = opening.match(line);
        if (m.hasMatch()) {
            fence = m.captured(1);
            line.clear();
        }
    }
    return lines;
}

// GitHub's anchors for the headings: lower case, punctuation dropped, spaces
// to hyphens.
QSet<QString> tst_DocSnippets::anchors(const QStringList &lines)
{
    QSet<QString> result;
    static const QRegularExpression heading(QStringLiteral(R"(^#{1,6}\s+(.*)$)"));
    for (const QString &line : lines) {
        const QRegularExpressionMatch m = heading.match(line);
        if (!m.hasMatch())
            continue;
        QString slug;
        for (const QChar c : m.captured(1).trimmed().toLower()) {
            if (c.isLetterOrNumber() || c == QLatin1Char('-') || c == QLatin1Char('_'))
                slug += c;
            else if (c == QLatin1Char(' '))
                slug += QLatin1Char('-');
        }
        result.insert(slug);
    }
    return result;
}

// Every relative link of the prose ([text](path), [text](path#anchor),
// [text](#anchor)) names a file of the tree and, with an anchor, one of its
// headings.
void tst_DocSnippets::linksResolve()
{
    QFETCH(QString, file);
    const QStringList lines = readLines(file);
    QVERIFY2(!lines.isEmpty(), qPrintable(file));
    static const QRegularExpression codeSpan(QStringLiteral("`+[^`]*`+"));
    static const QRegularExpression link(QStringLiteral(R"(\]\(([^)\s]+)\))"));
    const QDir base = QFileInfo(QStringLiteral(QISLE_SOURCE_DIR "/") + file).dir();
    int checked = 0;
    for (int i = 0; i < lines.size(); ++i) {
        QString prose = lines.at(i);
        prose.replace(codeSpan, QString());
        for (const QRegularExpressionMatch &m : link.globalMatch(prose)) {
            const QString target = m.captured(1);
            if (target.contains(QLatin1String("://")) || target.startsWith(QLatin1String("mailto:")))
                continue;
            const QString path = target.section(QLatin1Char('#'), 0, 0);
            const QString anchor = target.section(QLatin1Char('#'), 1);
            const QString where = QStringLiteral("%1:%2: %3").arg(file).arg(i + 1).arg(target);
            const QString resolved = path.isEmpty() ? base.filePath(QFileInfo(file).fileName())
                                                    : QDir::cleanPath(base.filePath(path));
            QVERIFY2(QFileInfo::exists(resolved), qPrintable(where + QStringLiteral(": no such file")));
            if (!anchor.isEmpty()) {
                const QString relative = QDir(QStringLiteral(QISLE_SOURCE_DIR)).relativeFilePath(resolved);
                QVERIFY2(anchors(readLines(relative)).contains(anchor),
                         qPrintable(where + QStringLiteral(": no such heading")));
            }
            ++checked;
        }
    }
    qInfo("%s: %d links resolve", qPrintable(file), checked);
}

QStringList tst_DocSnippets::files()
{
    const QString only = qEnvironmentVariable("QISLE_DOC_SNIPPETS");
    QStringList all = QStringLiteral(QISLE_DOC_MARKDOWN).split(QLatin1Char('|'));
    if (only.isEmpty())
        return all;
    return all.contains(only) ? QStringList{only} : QStringList{};
}

void tst_DocSnippets::everyBlockIsCompiled_data()
{
    QTest::addColumn<QString>("file");
    const QStringList names = files();
    QVERIFY2(!names.isEmpty(), "no Markdown file: is QISLE_DOC_SNIPPETS one of QISLE_DOC_MARKDOWN?");
    for (const QString &name : names)
        QTest::addRow("%s", qPrintable(name)) << name;
}

// Reads the Markdown again, independently of extract_snippets.cmake, more
// leniently (fences indented or not, any spelling of C++), and compares the
// opening lines it finds with those that were compiled.
void tst_DocSnippets::everyBlockIsCompiled()
{
    QFETCH(QString, file);
    QFile markdown(QStringLiteral(QISLE_SOURCE_DIR "/") + file);
    QVERIFY2(markdown.open(QIODevice::ReadOnly), qPrintable(markdown.errorString()));
    const QStringList lines = QString::fromUtf8(markdown.readAll()).split(QLatin1Char('\n'));

    static const QRegularExpression opening(QStringLiteral(R"(^\s*(`{3,}|~{3,})\s*(\S*))"));
    static const QRegularExpression cpp(QStringLiteral(R"(^(cpp|c\+\+|cxx|cc)$)"),
                                        QRegularExpression::CaseInsensitiveOption);
    QList<int> found;
    QString fence;
    for (int i = 0; i < lines.size(); ++i) {
        const QString line = lines.at(i).trimmed();
        if (!fence.isEmpty()) {
            if (line == fence)
                fence.clear();
            continue;
        }
        const QRegularExpressionMatch m = opening.match(lines.at(i));
        if (!m.hasMatch())
            continue;
        fence = m.captured(1);
        if (cpp.match(m.captured(2)).hasMatch())
            found.append(i + 1);
    }

    QList<int> compiled;
    for (const DocSnippetRegistration *snippet : DocSnippetRegistration::all()) {
        if (snippet->file == file)
            compiled.append(snippet->line);
    }
    std::sort(compiled.begin(), compiled.end());
    for (int line : std::as_const(found)) {
        QVERIFY2(compiled.contains(line),
                 qPrintable(QStringLiteral("%1:%2: this C++ block was not compiled: write ```cpp at the "
                                           "start of the line (tests/docs/README.md)")
                                    .arg(file).arg(line)));
    }
    QCOMPARE(compiled, found);
    qInfo("%s: %lld C++ blocks compiled", qPrintable(file), qlonglong(compiled.size()));
}

void tst_DocSnippets::run_data()
{
    QTest::addColumn<const DocSnippetRegistration *>("snippet");
    const QStringList names = files();
    int rows = 0;
    for (const DocSnippetRegistration *snippet : DocSnippetRegistration::all()) {
        if (snippet->mode == DocSnippet::Mode::Run && names.contains(snippet->file)) {
            QTest::addRow("%s:%d", qPrintable(snippet->file), snippet->line) << snippet;
            ++rows;
        }
    }
    if (rows == 0)
        QTest::addRow("none to run") << static_cast<const DocSnippetRegistration *>(nullptr);
}

void tst_DocSnippets::run()
{
    QFETCH(const DocSnippetRegistration *, snippet);
    if (!snippet) {
        // Nothing registered to run: the Markdown, read leniently (any fence,
        // any spelling of C++), must have no block marked run either.
        static const QRegularExpression runFence(QStringLiteral(R"(^\s*(`{3,}|~{3,})\s*(cpp|c\+\+|cxx|cc)\b.*\brun\b)"),
                                                 QRegularExpression::CaseInsensitiveOption);
        for (const QString &file : files()) {
            QFile markdown(QStringLiteral(QISLE_SOURCE_DIR "/") + file);
            QVERIFY2(markdown.open(QIODevice::ReadOnly), qPrintable(markdown.errorString()));
            const QStringList lines = QString::fromUtf8(markdown.readAll()).split(QLatin1Char('\n'));
            for (int i = 0; i < lines.size(); ++i) {
                QVERIFY2(!runFence.match(lines.at(i)).hasMatch(),
                         qPrintable(QStringLiteral("%1:%2: a block marked run was not registered to run")
                                            .arg(file).arg(i + 1)));
            }
            qInfo("%s: no block marked run", qPrintable(file));
        }
        return;
    }
    QVERIFY(snippet->factory);
    std::unique_ptr<DocSnippet> object = snippet->factory();
    try {
        object->body();
    } catch (const QIsleError &e) {
        QFAIL(qPrintable(QStringLiteral("%1:%2 threw QIsleError %3").arg(snippet->file).arg(snippet->line)
                                 .arg(QString::fromUtf8(e.what()))));
    } catch (const std::exception &e) {
        QFAIL(qPrintable(QStringLiteral("%1:%2 threw %3").arg(snippet->file).arg(snippet->line)
                                 .arg(QString::fromUtf8(e.what()))));
    }
    // Continuations with a context object and queued signals arrive through
    // the event loop, as they would in the application.
    QTest::qWait(50);
}


QTEST_MAIN(tst_DocSnippets)
#include "tst_doc_snippets.moc"
