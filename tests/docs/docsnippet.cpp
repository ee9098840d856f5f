// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "docsnippet.h"

namespace {
QList<const DocSnippetRegistration *> &registry()
{
    static QList<const DocSnippetRegistration *> snippets;
    return snippets;
}
} // namespace

QStringList filesUnder(const QString &directory)
{
    QStringList files;
    QDirIterator it(directory, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext())
        files.append(it.next());
    return files;
}

qlonglong countIn(const QString &path)
{
    return QFileInfo(path).size();
}

DocSnippet::DocSnippet()
    : m_isle(QIsle::spawn())
    , m_progressBar(new QProgressBar(&m_window))
    , m_stopButton(new QPushButton(QStringLiteral("Stop"), &m_window))
    , m_output(new QPlainTextEdit(&m_window))
{
}

DocSnippet::~DocSnippet() = default;

DocSnippetRegistration::DocSnippetRegistration(const char *file, int line, DocSnippet::Mode mode,
                                               Factory factory)
    : file(QString::fromUtf8(file)), line(line), mode(mode), factory(std::move(factory))
{
    registry().append(this);
}

const QList<const DocSnippetRegistration *> &DocSnippetRegistration::all()
{
    return registry();
}
