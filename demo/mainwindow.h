// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/QIsle>

#include <QtCore/QElapsedTimer>
#include <QtCore/QFutureWatcher>
#include <QtCore/QTimer>
#include <QtWidgets/QMainWindow>

#include <memory>

class Canvas;
class ConsoleLine;
class Downloads;
class JobList;
class LuaEditor;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

// The scripting panel: an editor, Run/Stop/Pause-Resume, a progress bar,
// output (print and isle.emit), an errors view, a REPL console and the list
// of what runs, over one QIsle that lives as long as the window. Requests run
// side by side (maxConcurrentRequests 0, timeSlice 25 ms): the console
// answers while the editor's script waits or computes, and every running
// request (and download) has a row with its own Stop.
class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    enum class State { Idle, Running, Pausing, Paused };
    Q_ENUM(State)

    explicit MainWindow(QWidget *parent = nullptr);
    // Destroys the isle first: a running script is canceled and the VM's
    // thread joined, promptly even during `while true do end`.
    ~MainWindow() override;

    State state() const { return m_state; }
    LuaEditor *editor() const { return m_editor; }
    // The application object scripts draw on (Lua: `canvas`).
    Canvas *canvas() const { return m_canvas; }
    // The simulated downloads scripts await (Lua: `app.download(url [, bytes])`).
    Downloads *downloads() const { return m_downloads; }
    // What runs now: the editor's script ("editor"), console inputs
    // ("in[N]") and downloads ("download[N]"), each with its Stop.
    JobList *jobs() const { return m_jobs; }

    // Types a line into the console and presses Return.
    void enterConsoleLine(const QString &line);

    // The examples under :/examples, by name: progress, stream, infinite,
    // error, canvas, download.
    static QStringList exampleNames();
    bool loadExample(const QString &name);

public Q_SLOTS:
    void run();
    void stop();
    void togglePause();

private:
    void buildMenus();
    void setState(State state);
    void finishRun();
    void showError(const QIsleError &error);
    void submitConsole(const QString &line);
    void appendOutput(const QString &line);
    void appendResults(int first, int last);
    void outputAdded();
    void flushOutput();

    LuaEditor *m_editor = nullptr;
    Canvas *m_canvas = nullptr;
    Downloads *m_downloads = nullptr;
    JobList *m_jobs = nullptr;
    int m_downloadCount = 0;
    QPushButton *m_run = nullptr;
    QPushButton *m_stop = nullptr;
    QPushButton *m_pause = nullptr;
    QProgressBar *m_progress = nullptr;
    QPlainTextEdit *m_output = nullptr;
    QPlainTextEdit *m_errors = nullptr;
    QLabel *m_prompt = nullptr;
    ConsoleLine *m_console = nullptr;

    State m_state = State::Idle;
    QFutureWatcher<QVariant> m_watcher; // the editor's run
    QElapsedTimer m_elapsed;
    int m_shownResults = 0; // highest streamed result index shown
    QString m_continuation; // console lines of an incomplete chunk
    QString m_chunkName = QStringLiteral("=editor"); // the editor's script, as Lua names it in errors
    int m_consoleInputs = 0;

    // Output is appended in batches: a script printing or emitting in a
    // tight loop must not cost the UI one append per line. Streamed results
    // wait as index ranges and are formatted at the flush, last lines only.
    struct PendingOutput
    {
        QString text;        // a line, or
        int firstResult = 0; // streamed results first..last of m_watcher's future
        int lastResult = -1;
    };
    QList<PendingOutput> m_pendingOutput;
    qsizetype m_pendingLines = 0;
    qsizetype m_skippedOutput = 0;
    QTimer m_flushTimer;

    std::unique_ptr<QIsle> m_isle; // last: destroyed first
};
