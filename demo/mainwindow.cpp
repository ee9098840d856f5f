// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "mainwindow.h"

#include "canvas.h"
#include "consoleline.h"
#include "downloads.h"
#include "joblist.h"
#include "luaeditor.h"
#include "valuetext.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QFile>
#include <QtGui/QAction>
#include <QtGui/QFontDatabase>
#include <QtGui/QKeyEvent>
#include <QtWidgets/QFileDialog>
#include <QtWidgets/QHBoxLayout>
#include <QtWidgets/QLabel>
#include <QtWidgets/QMenuBar>
#include <QtWidgets/QPlainTextEdit>
#include <QtWidgets/QProgressBar>
#include <QtWidgets/QPushButton>
#include <QtWidgets/QScrollArea>
#include <QtWidgets/QSplitter>
#include <QtWidgets/QStatusBar>
#include <QtWidgets/QVBoxLayout>

namespace {

// Lines the output keeps.
constexpr int OutputLines = 5000;
// The most one flush (every 40 ms) appends: more than anyone reads, and a
// flood stays cheap to lay out. Older pending lines are counted, not shown.
constexpr int FlushLines = 500;

struct Example
{
    const char *name;
    const char *title;
};
constexpr Example Examples[] = {
    {"progress", "A long computation with progress"},
    {"stream", "A stream of results"},
    {"infinite", "An infinite loop to stop"},
    {"error", "A script with an error on line 7"},
    {"canvas", "Draw on the application's canvas"},
    {"download", "Await the application's downloads"},
};

QPlainTextEdit *textPane(const QString &name, QWidget *parent)
{
    auto *pane = new QPlainTextEdit(parent);
    pane->setObjectName(name);
    pane->setReadOnly(true);
    pane->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    return pane;
}

QWidget *titled(QLabel *label, QWidget *content, QWidget *below = nullptr)
{
    auto *box = new QWidget;
    auto *layout = new QVBoxLayout(box);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    QFont bold = label->font();
    bold.setBold(true);
    label->setFont(bold);
    layout->addWidget(label);
    layout->addWidget(content, 1);
    if (below)
        layout->addWidget(below);
    return box;
}

QWidget *titled(const QString &title, QWidget *content, QWidget *below = nullptr)
{
    return titled(new QLabel(title), content, below);
}

} // namespace

MainWindow::MainWindow(QWidget *parent) : QMainWindow(parent)
{
    setWindowTitle(tr("QIsle scripting panel"));

    m_editor = new LuaEditor;
    m_editor->setObjectName(QStringLiteral("editor"));

    m_run = new QPushButton(tr("Run"));
    m_run->setObjectName(QStringLiteral("run"));
    m_stop = new QPushButton(tr("Stop"));
    m_stop->setObjectName(QStringLiteral("stop"));
    m_pause = new QPushButton(tr("Pause"));
    m_pause->setObjectName(QStringLiteral("pause"));
    m_progress = new QProgressBar;
    m_progress->setObjectName(QStringLiteral("progress"));
    m_progress->setTextVisible(true);
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_run);
    buttons->addWidget(m_stop);
    buttons->addWidget(m_pause);
    buttons->addWidget(m_progress, 1);

    m_output = textPane(QStringLiteral("output"), this);
    m_output->setMaximumBlockCount(OutputLines);
    m_errors = textPane(QStringLiteral("errors"), this);
    m_errors->setPlaceholderText(tr("A failed run shows its message and traceback here."));

    m_prompt = new QLabel(QStringLiteral(">"));
    m_prompt->setObjectName(QStringLiteral("prompt"));
    m_prompt->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_console = new ConsoleLine;
    m_console->setObjectName(QStringLiteral("console"));
    m_console->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_console->setPlaceholderText(tr("Lua: an expression shows its value; Up/Down for history; Esc drops an unfinished chunk"));
    auto *consoleRow = new QWidget;
    auto *consoleLayout = new QHBoxLayout(consoleRow);
    consoleLayout->setContentsMargins(0, 0, 0, 0);
    consoleLayout->addWidget(m_prompt);
    consoleLayout->addWidget(m_console, 1);

    // What runs now, each with its Stop: requests run side by side.
    m_jobs = new JobList;
    auto *jobsScroll = new QScrollArea;
    jobsScroll->setWidget(m_jobs);
    jobsScroll->setWidgetResizable(true);
    auto *jobsTitle = new QLabel(tr("Running"));
    connect(m_jobs, &JobList::countChanged, jobsTitle, [jobsTitle](int count) {
        jobsTitle->setText(count == 0 ? tr("Running") : tr("Running (%1)").arg(count));
    });
    auto *bottom = new QSplitter(Qt::Horizontal);
    bottom->addWidget(titled(tr("Output"), m_output, consoleRow));
    bottom->addWidget(titled(tr("Errors"), m_errors));
    bottom->setStretchFactor(0, 3);
    bottom->setStretchFactor(1, 2);
    // Beside the editor: the application object scripts drive, and what runs.
    m_canvas = new Canvas;
    auto *right = new QSplitter(Qt::Vertical);
    right->addWidget(titled(tr("Canvas (Lua: canvas)"), m_canvas));
    right->addWidget(titled(jobsTitle, jobsScroll));
    right->setStretchFactor(0, 3);
    right->setStretchFactor(1, 2);
    right->setSizes({1200, 800}); // 3 : 2, whatever the canvas's size hint
    auto *top = new QSplitter(Qt::Horizontal);
    top->addWidget(m_editor);
    top->addWidget(right);
    top->setStretchFactor(0, 3);
    top->setStretchFactor(1, 2);
    auto *split = new QSplitter(Qt::Vertical);
    split->addWidget(top);
    split->addWidget(bottom);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto *central = new QWidget;
    auto *layout = new QVBoxLayout(central);
    layout->addLayout(buttons);
    layout->addWidget(split, 1);
    setCentralWidget(central);

    m_flushTimer.setSingleShot(true);
    m_flushTimer.setInterval(40);
    connect(&m_flushTimer, &QTimer::timeout, this, &MainWindow::flushOutput);

    connect(m_run, &QPushButton::clicked, this, &MainWindow::run);
    connect(m_stop, &QPushButton::clicked, this, &MainWindow::stop);
    connect(m_pause, &QPushButton::clicked, this, &MainWindow::togglePause);
    connect(m_console, &ConsoleLine::submitted, this, &MainWindow::submitConsole);
    connect(m_console, &ConsoleLine::abandoned, this, [this] {
        if (m_continuation.isEmpty())
            return;
        m_continuation.clear();
        m_prompt->setText(QStringLiteral(">"));
        appendOutput(tr("  (unfinished chunk abandoned)"));
    });

    connect(&m_watcher, &QFutureWatcherBase::progressRangeChanged, m_progress, &QProgressBar::setRange);
    connect(&m_watcher, &QFutureWatcherBase::progressValueChanged, m_progress, &QProgressBar::setValue);
    connect(&m_watcher, &QFutureWatcherBase::progressTextChanged, this, [this](const QString &text) {
        m_progress->setFormat(text.isEmpty() ? QStringLiteral("%p%") : text + QStringLiteral("  (%p%)"));
    });
    // Streamed results (isle.emit: results 1..n, announced at once); result
    // 0 is the return value, shown at the end. Show each index once.
    connect(&m_watcher, &QFutureWatcherBase::resultsReadyAt, this, [this](int begin, int end) {
        const int last = qMax(begin, end - 1);
        if (last > m_shownResults) {
            appendResults(qMax(begin, m_shownResults + 1), last);
            m_shownResults = last;
        }
    });
    connect(&m_watcher, &QFutureWatcherBase::suspending, this, [this] { setState(State::Pausing); });
    connect(&m_watcher, &QFutureWatcherBase::suspended, this, [this] { setState(State::Paused); });
    connect(&m_watcher, &QFutureWatcherBase::resumed, this, [this] { setState(State::Running); });
    connect(&m_watcher, &QFutureWatcherBase::finished, this, &MainWindow::finishRun);

    QIsleOptions options;
    options.threadName = QStringLiteral("panel-lua");
    // Side by side: while the editor's script waits (isle.sleep, a download)
    // the console and the canvas's handlers run, and a script that computes
    // takes turns with them every 25 ms.
    options.maxConcurrentRequests = 0;
    options.timeSlice = std::chrono::milliseconds(25);
    m_isle = QIsle::spawn({}, options);
    connect(m_isle.get(), &QIsle::printed, this, &MainWindow::appendOutput);
    // Scripts use the canvas directly; every access runs here, in the GUI thread.
    m_isle->exposeObject(QStringLiteral("canvas"), m_canvas);
    connect(m_isle.get(), &QIsle::handlerFailed, this, &MainWindow::showError);

    // app.download(url [, bytes]): runs here, in the GUI thread, and returns
    // the download's future; the script waits for it without holding the
    // Lua thread, and gets the bytes (or an error it can pcall). Stopping the
    // script cancels the download.
    m_downloads = new Downloads(this);
    connect(m_downloads, &Downloads::started, this, [this](const QString &url, const QFuture<QVariant> &future) {
        const QString key = QStringLiteral("download[%1]").arg(++m_downloadCount);
        m_jobs->add(key, QStringLiteral("\u21e3 ") + url.section(QLatin1Char('/'), -1), future);
    });
    m_isle->registerAsyncFunction(QStringLiteral("app.download"), this, [this](const QVariantList &args) {
        const qint64 size = args.size() > 1 ? args.at(1).toLongLong() : -1;
        return m_downloads->start(args.value(0).toString(), size);
    });

    buildMenus();
    setState(State::Idle);
    loadExample(QStringLiteral("progress"));
}

MainWindow::~MainWindow()
{
    // Nothing may reach a half-destroyed window: the watcher's signals go
    // first, then the isle cancels what runs and joins its thread.
    m_watcher.disconnect(this);
    m_flushTimer.stop();
    m_isle.reset();
}

void MainWindow::buildMenus()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open..."), QKeySequence::Open, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open a Lua script"), {},
                                                          tr("Lua scripts (*.lua);;All files (*)"));
        QFile f(path);
        if (!path.isEmpty() && f.open(QIODevice::ReadOnly)) {
            m_editor->setText(QString::fromUtf8(f.readAll()));
            m_chunkName = QLatin1Char('@') + QDir::current().relativeFilePath(path); // errors read "file.lua:3:"
        }
    });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu *script = menuBar()->addMenu(tr("&Script"));
    script->addAction(tr("&Run"), QKeySequence(Qt::Key_F5), this, &MainWindow::run);
    script->addAction(tr("&Stop"), QKeySequence(Qt::SHIFT | Qt::Key_F5), this, &MainWindow::stop);
    script->addAction(tr("&Pause / Resume"), QKeySequence(Qt::Key_F6), this, &MainWindow::togglePause);

    QMenu *examples = menuBar()->addMenu(tr("&Examples"));
    for (const Example &e : Examples) {
        const QString name = QLatin1String(e.name);
        QAction *action = examples->addAction(tr(e.title), this, [this, name] { loadExample(name); });
        action->setObjectName(QStringLiteral("example-") + name);
    }
}

QStringList MainWindow::exampleNames()
{
    QStringList names;
    for (const Example &e : Examples)
        names << QLatin1String(e.name);
    return names;
}

bool MainWindow::loadExample(const QString &name)
{
    QFile f(QStringLiteral(":/examples/%1.lua").arg(name));
    if (!f.open(QIODevice::ReadOnly))
        return false;
    m_editor->setText(QString::fromUtf8(f.readAll()));
    m_chunkName = QStringLiteral("@examples/%1.lua").arg(name);
    m_editor->clearError();
    statusBar()->showMessage(tr("Example: %1").arg(name), 3000);
    return true;
}

void MainWindow::setState(State state)
{
    m_state = state;
    const bool busy = state != State::Idle;
    m_run->setEnabled(!busy);
    m_stop->setEnabled(busy);
    m_pause->setEnabled(busy);
    m_pause->setText(state == State::Pausing || state == State::Paused ? tr("Resume") : tr("Pause"));
    switch (state) {
    case State::Idle: break;
    case State::Running: statusBar()->showMessage(tr("Running...")); break;
    case State::Pausing: statusBar()->showMessage(tr("Pausing at the next check...")); break;
    case State::Paused: statusBar()->showMessage(tr("Paused")); break;
    }
}

void MainWindow::run()
{
    if (m_state != State::Idle)
        return;
    m_editor->clearError();
    m_errors->clear();
    m_progress->setRange(0, 0); // busy until the script reports a range
    m_progress->setFormat(QStringLiteral("%p%"));
    flushOutput(); // pending results belong to the previous run's future
    appendOutput(QStringLiteral("\u25b6 run"));
    m_shownResults = 0;
    setState(State::Running);
    m_elapsed.start();
    QIsleRequestOptions options;
    options.chunkName = m_chunkName;
    const QFuture<QVariant> future = m_isle->spawnEval(m_editor->text(), options);
    m_watcher.setFuture(future);
    m_jobs->add(QStringLiteral("editor"), QStringLiteral("\u25b6 ") + m_chunkName.mid(1).section(QLatin1Char('/'), -1),
                future);
}

void MainWindow::stop()
{
    if (m_state != State::Idle)
        m_watcher.future().cancel(); // also wakes a paused script
}

void MainWindow::togglePause()
{
    QFuture<QVariant> f = m_watcher.future();
    if (m_state == State::Running) {
        f.suspend();
        setState(State::Pausing);
    } else if (m_state == State::Pausing || m_state == State::Paused) {
        f.resume();
        setState(State::Running);
    }
}

void MainWindow::finishRun()
{
    const QFuture<QVariant> f = m_watcher.future();
    const QString took = tr("%1 ms").arg(m_elapsed.elapsed());
    try {
        // waitFor, not result(): a canceled future may hold no result.
        const QVariant value = QIsle::waitFor(f);
        appendOutput(QStringLiteral("\u25a0 returned %1 (%2)").arg(valueText(value), took));
        if (m_progress->maximum() == 0)
            m_progress->setRange(0, 1);
        m_progress->setValue(m_progress->maximum());
        statusBar()->showMessage(tr("Finished in %1").arg(took));
    } catch (const QIsleError &e) {
        if (e.kind() == QIsleError::Kind::Cancelled) {
            appendOutput(QStringLiteral("\u25a0 stopped (%1)").arg(took));
            statusBar()->showMessage(tr("Stopped after %1").arg(took));
        } else {
            showError(e);
            statusBar()->showMessage(tr("Failed after %1").arg(took));
        }
        if (m_progress->maximum() == 0)
            m_progress->setRange(0, 1);
    }
    setState(State::Idle);
}

void MainWindow::showError(const QIsleError &error)
{
    m_editor->markError(error.line());
    QString header = QIsleError::kindName(error.kind()) + tr(" error");
    if (error.line() > 0)
        header += tr(" at line %1").arg(error.line());
    header += QStringLiteral(": ") + error.message();
    m_errors->setPlainText(error.traceback().isEmpty() ? header : header + QStringLiteral("\n\n") + error.traceback());
    appendOutput(QStringLiteral("\u2716 ") + header);
}

void MainWindow::submitConsole(const QString &line)
{
    const bool continuing = !m_continuation.isEmpty();
    if (!continuing && line.trimmed().isEmpty())
        return;
    appendOutput((continuing ? QStringLiteral(">> ") : QStringLiteral("> ")) + line);
    const QString input = continuing ? m_continuation + QLatin1Char('\n') + line : line;
    const QIsleReplInput parsed = qisleClassifyInput(input);
    if (parsed.kind == QIsleReplInput::Kind::Incomplete) {
        m_continuation = input;
        m_prompt->setText(QStringLiteral(">>"));
        return;
    }
    m_continuation.clear();
    m_prompt->setText(QStringLiteral(">"));
    if (parsed.kind == QIsleReplInput::Kind::SyntaxError) {
        appendOutput(QStringLiteral("\u2716 syntax error at line %1: %2").arg(parsed.line).arg(parsed.error));
        return;
    }
    // The input runs beside whatever else runs; it has a row in Running
    // with its own Stop. Each input is a chunk of its own, numbered as typed.
    const bool expression = parsed.kind == QIsleReplInput::Kind::Expression;
    const int number = ++m_consoleInputs;
    const QString name = QStringLiteral("in[%1]").arg(number);
    QIsleRequestOptions options;
    options.chunkName = QLatin1Char('=') + name;
    QIsleJob *job = m_jobs->add(name, name + QStringLiteral("  ") + input.simplified(),
                                m_isle->spawnEval(parsed.chunk, options));
    connect(job, &QIsleJob::finished, this, [this, job, expression, number, name] {
        // Later inputs were typed since: say which one this answer is for.
        const QString tag = number < m_consoleInputs ? name + QStringLiteral(": ") : QString();
        if (job->isCanceled())
            appendOutput(tag + tr("stopped"));
        else if (const std::optional<QIsleError> error = job->error())
            appendOutput(tag + QStringLiteral("\u2716 ") + QString::fromUtf8(error->what()));
        else if (expression || job->result().isValid())
            appendOutput(tag + valueText(job->result()));
    });
}

void MainWindow::enterConsoleLine(const QString &line)
{
    m_console->setText(line);
    m_console->setFocus();
    QKeyEvent press(QEvent::KeyPress, Qt::Key_Return, Qt::NoModifier);
    QCoreApplication::sendEvent(m_console, &press);
}

void MainWindow::appendOutput(const QString &line)
{
    m_pendingOutput.append({line, 0, -1});
    ++m_pendingLines;
    outputAdded();
}

void MainWindow::appendResults(int first, int last)
{
    if (!m_pendingOutput.isEmpty() && m_pendingOutput.constLast().lastResult == first - 1
        && m_pendingOutput.constLast().firstResult <= m_pendingOutput.constLast().lastResult) {
        m_pendingOutput.last().lastResult = last;
    } else {
        m_pendingOutput.append({QString(), first, last});
    }
    m_pendingLines += last - first + 1;
    outputAdded();
}

void MainWindow::outputAdded()
{
    // Only the last FlushLines lines will show: drop older ones unformatted.
    while (m_pendingLines > FlushLines) {
        PendingOutput &front = m_pendingOutput.first();
        const qsizetype excess = m_pendingLines - FlushLines;
        qsizetype dropped = 1;
        if (front.firstResult <= front.lastResult) {
            dropped = qMin<qsizetype>(excess, front.lastResult - front.firstResult + 1);
            front.firstResult += int(dropped);
        }
        if (front.firstResult > front.lastResult)
            m_pendingOutput.removeFirst();
        m_pendingLines -= dropped;
        m_skippedOutput += dropped;
    }
    if (!m_flushTimer.isActive())
        m_flushTimer.start();
}

void MainWindow::flushOutput()
{
    if (m_pendingOutput.isEmpty())
        return;
    QStringList lines;
    lines.reserve(m_pendingLines + 1);
    if (m_skippedOutput > 0)
        lines << tr("... %1 lines not shown").arg(m_skippedOutput);
    const QFuture<QVariant> f = m_watcher.future();
    for (const PendingOutput &entry : std::as_const(m_pendingOutput)) {
        if (entry.firstResult > entry.lastResult) {
            lines << entry.text;
            continue;
        }
        for (int i = entry.firstResult; i <= entry.lastResult; ++i) {
            if (f.isResultReadyAt(i))
                lines << QStringLiteral("\u21e2 ") + valueText(f.resultAt(i));
        }
    }
    m_pendingOutput.clear();
    m_pendingLines = 0;
    m_skippedOutput = 0;
    m_output->appendPlainText(lines.join(QLatin1Char('\n')));
}
