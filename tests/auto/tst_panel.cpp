// The demo scripting panel, driven as a user would: type, click, read.
#include "consoleline.h"
#include "downloads.h"
#include "joblist.h"
#include "luaeditor.h"
#include "mainwindow.h"

#include <QtGui/QAction>
#include <QtTest/QtTest>
#include <QtWidgets/QLabel>
#include <QtWidgets/QPlainTextEdit>
#include <QtWidgets/QProgressBar>
#include <QtWidgets/QPushButton>

class tst_Panel : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void idleButtons();
    void runProgressStop();
    void runToCompletion();
    void errorMarksLine();
    void pauseAndResume();
    void streamedResults();
    void floodedOutputStaysBounded();
    void replExpression();
    void replMultiLine();
    void replHistory();
    void replSyntaxError();
    void replChunksAreNumbered();
    void editorChunkNamedAfterExample();
    void examplesLoad_data();
    void examplesLoad();
    void closeWhileRunning();
    void consoleAnswersWhileScriptSleeps();
    void stopStopsOnlyItsOwnJob();
    void downloadExample();
    void stoppingScriptCancelsDownload();
    void downloadRowStop();

private:
    template<typename T>
    T *child(const char *name)
    {
        T *w = window->findChild<T *>(QLatin1String(name));
        if (!w)
            qFatal("no widget named %s", name);
        return w;
    }
    QString output() { return child<QPlainTextEdit>("output")->toPlainText(); }
    void typeScript(const QString &text);
    void consoleEnter(const QString &line);
    void clickStop(const QString &key);

    std::unique_ptr<MainWindow> window;
};

void tst_Panel::init()
{
    window = std::make_unique<MainWindow>();
    window->resize(900, 600);
    window->show();
    QVERIFY(QTest::qWaitForWindowExposed(window.get()));
}

void tst_Panel::cleanup()
{
    window.reset();
}

void tst_Panel::typeScript(const QString &text)
{
    LuaEditor *editor = window->editor();
    editor->clear();
    editor->setFocus();
    // keyClicks knows no '\n': Return between the lines, as a user types.
    const QStringList lines = text.split(QLatin1Char('\n'));
    for (qsizetype i = 0; i < lines.size(); ++i) {
        if (i > 0)
            QTest::keyClick(editor, Qt::Key_Return);
        QTest::keyClicks(editor, lines.at(i));
    }
    QCOMPARE(editor->text(), text);
}

void tst_Panel::consoleEnter(const QString &line)
{
    auto *console = child<ConsoleLine>("console");
    console->setFocus();
    QTest::keyClicks(console, line);
    QTest::keyClick(console, Qt::Key_Return);
}

void tst_Panel::clickStop(const QString &key)
{
    QPushButton *stop = window->jobs()->stopButton(key);
    QVERIFY2(stop, qPrintable(key + QLatin1String(" is not running: ") + window->jobs()->keys().join(u' ')));
    QTRY_VERIFY_WITH_TIMEOUT(stop->isVisible(), 5000);
    QTest::mouseClick(stop, Qt::LeftButton);
}

void tst_Panel::idleButtons()
{
    QVERIFY(child<QPushButton>("run")->isEnabled());
    QVERIFY(!child<QPushButton>("stop")->isEnabled());
    QVERIFY(!child<QPushButton>("pause")->isEnabled());
    QCOMPARE(window->state(), MainWindow::State::Idle);
    QVERIFY(!window->editor()->text().isEmpty()); // an example is loaded
}

void tst_Panel::runProgressStop()
{
    typeScript(QStringLiteral("for i = 1, 1000 do isle.progress(i, 1000, 'step ' .. i) isle.sleep(10) end"));
    auto *run = child<QPushButton>("run");
    auto *stop = child<QPushButton>("stop");
    auto *pause = child<QPushButton>("pause");
    auto *bar = child<QProgressBar>("progress");
    QTest::mouseClick(run, Qt::LeftButton);
    QCOMPARE(window->state(), MainWindow::State::Running);
    QVERIFY(!run->isEnabled());
    QVERIFY(stop->isEnabled());
    QVERIFY(pause->isEnabled());

    QTRY_COMPARE_WITH_TIMEOUT(bar->maximum(), 1000, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(bar->value() > 0, 5000);
    const int first = bar->value();
    QTRY_VERIFY_WITH_TIMEOUT(bar->value() > first, 5000); // it moves
    QVERIFY(bar->text().startsWith(QLatin1String("step ")));

    QTest::mouseClick(stop, Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QVERIFY(run->isEnabled());
    QVERIFY(!stop->isEnabled());
    QVERIFY(!pause->isEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("stopped")), 5000);
    QCOMPARE(window->editor()->errorLine(), -1);
}

void tst_Panel::runToCompletion()
{
    typeScript(QStringLiteral("print('hello', 42)\nreturn {1, 2}"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("returned {1, 2}")), 5000);
    QVERIFY(output().contains(QLatin1String("hello\t42")));
    auto *bar = child<QProgressBar>("progress");
    QCOMPARE(bar->value(), bar->maximum());
}

void tst_Panel::errorMarksLine()
{
    typeScript(QStringLiteral("local a = 1\nlocal b = 2\nlocal c = nil + a\nreturn c"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->editor()->errorLine(), 3, 5000);
    QCOMPARE(window->state(), MainWindow::State::Idle);
    const QString errors = child<QPlainTextEdit>("errors")->toPlainText();
    QVERIFY2(errors.contains(QLatin1String("Runtime error at line 3")), qPrintable(errors));
    QVERIFY2(errors.contains(QLatin1String("arithmetic")), qPrintable(errors));
    QVERIFY2(errors.contains(QLatin1String("stack traceback")), qPrintable(errors));

    // The error example fails on line 7; a good run clears the mark.
    QVERIFY(window->loadExample(QStringLiteral("error")));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->editor()->errorLine(), 7, 5000);
    typeScript(QStringLiteral("return 1"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->editor()->errorLine(), -1, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QVERIFY(child<QPlainTextEdit>("errors")->toPlainText().isEmpty());
}

void tst_Panel::pauseAndResume()
{
    typeScript(QStringLiteral("local n = 0 while true do n = n + 1 isle.progress(n) end"));
    auto *pause = child<QPushButton>("pause");
    auto *bar = child<QProgressBar>("progress");
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTest::qWait(50);
    QTest::mouseClick(pause, Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Paused, 5000);
    QCOMPARE(pause->text(), QStringLiteral("Resume"));
    QVERIFY(child<QPushButton>("stop")->isEnabled());
    QTest::qWait(100); // the last throttled notifications land
    const int atPause = bar->value();
    QTest::qWait(150);
    QCOMPARE(bar->value(), atPause);

    QTest::mouseClick(pause, Qt::LeftButton);
    QCOMPARE(window->state(), MainWindow::State::Running);
    QCOMPARE(pause->text(), QStringLiteral("Pause"));
    QTRY_VERIFY_WITH_TIMEOUT(bar->value() > atPause, 5000);

    // Stop while paused works too.
    QTest::mouseClick(pause, Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Paused, 5000);
    QTest::mouseClick(child<QPushButton>("stop"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
}

void tst_Panel::streamedResults()
{
    typeScript(QStringLiteral("for i = 1, 3 do isle.emit('item ' .. i) end return 'end'"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("returned end")), 5000);
    const QString text = output();
    const qsizetype one = text.indexOf(QLatin1String("item 1"));
    const qsizetype three = text.indexOf(QLatin1String("item 3"));
    QVERIFY(one >= 0 && three > one);
    QVERIFY(three < text.indexOf(QLatin1String("returned end")));
}

void tst_Panel::floodedOutputStaysBounded()
{
    // 100k emits and 20k prints: the output is appended in batches and keeps
    // its last lines; the window's own timer keeps ticking meanwhile.
    typeScript(QStringLiteral("for i = 1, 100000 do isle.emit(i) end for i = 1, 20000 do print('p' .. i) end return 'ok'"));
    int ticks = 0;
    qint64 longestGap = 0;
    QElapsedTimer last;
    QTimer heartbeat;
    connect(&heartbeat, &QTimer::timeout, this, [&] {
        if (last.isValid())
            longestGap = qMax(longestGap, last.elapsed());
        last.start();
        ++ticks;
    });
    heartbeat.start(5);
    QElapsedTimer elapsed;
    elapsed.start();
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_VERIFY2_WITH_TIMEOUT(output().contains(QLatin1String("returned ok")), qPrintable(output().right(300)), 30000);
    QTRY_VERIFY2_WITH_TIMEOUT(output().contains(QLatin1String("p20000")), qPrintable(output().right(300)), 30000);
    qInfo("100k emits + 20k prints shown in %lld ms; %d ticks, longest gap %lld ms", elapsed.elapsed(), ticks,
          longestGap);
    QVERIFY(ticks > 0);
    auto *pane = child<QPlainTextEdit>("output");
    QVERIFY(pane->blockCount() <= pane->maximumBlockCount());
    QVERIFY(output().contains(QLatin1String("p20000")));
    QVERIFY(!output().contains(QLatin1String("\u21e2 1\n"))); // the oldest lines went
}

void tst_Panel::replExpression()
{
    consoleEnter(QStringLiteral("6 * 7"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> 6 * 7\n42")), 5000);
    consoleEnter(QStringLiteral("answer = 41 + 1"));
    consoleEnter(QStringLiteral("answer"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> answer\n42")), 5000);
    QVERIFY(!output().contains(QLatin1String("> answer = 41 + 1\nnil")));
}

void tst_Panel::replMultiLine()
{
    auto *prompt = child<QLabel>("prompt");
    consoleEnter(QStringLiteral("function square(x)"));
    QCOMPARE(prompt->text(), QStringLiteral(">>"));
    consoleEnter(QStringLiteral("return x * x"));
    QCOMPARE(prompt->text(), QStringLiteral(">>"));
    consoleEnter(QStringLiteral("end"));
    QCOMPARE(prompt->text(), QStringLiteral(">"));
    consoleEnter(QStringLiteral("square(9)"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> square(9)\n81")), 5000);

    // Escape drops an unfinished chunk.
    consoleEnter(QStringLiteral("for i = 1, 3 do"));
    QCOMPARE(prompt->text(), QStringLiteral(">>"));
    QTest::keyClick(child<ConsoleLine>("console"), Qt::Key_Escape);
    QCOMPARE(prompt->text(), QStringLiteral(">"));
    consoleEnter(QStringLiteral("square(3)"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> square(3)\n9")), 5000);
}

void tst_Panel::replHistory()
{
    auto *console = child<ConsoleLine>("console");
    consoleEnter(QStringLiteral("1"));
    consoleEnter(QStringLiteral("2"));
    QTest::keyClicks(console, QStringLiteral("dra"));
    QTest::keyClick(console, Qt::Key_Up);
    QCOMPARE(console->text(), QStringLiteral("2"));
    QTest::keyClick(console, Qt::Key_Up);
    QCOMPARE(console->text(), QStringLiteral("1"));
    QTest::keyClick(console, Qt::Key_Up);
    QCOMPARE(console->text(), QStringLiteral("1"));
    QTest::keyClick(console, Qt::Key_Down);
    QCOMPARE(console->text(), QStringLiteral("2"));
    QTest::keyClick(console, Qt::Key_Down);
    QCOMPARE(console->text(), QStringLiteral("dra"));
}

void tst_Panel::replSyntaxError()
{
    consoleEnter(QStringLiteral("x = = 1"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("syntax error at line 1")), 5000);
    QCOMPARE(child<QLabel>("prompt")->text(), QStringLiteral(">"));
    consoleEnter(QStringLiteral("error('boom')"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("boom")), 5000);
    QCOMPARE(window->editor()->errorLine(), -1); // console errors stay in the console
}

void tst_Panel::replChunksAreNumbered()
{
    // Each input is a chunk of its own: an error raised in a function that an
    // earlier input defined names that input.
    consoleEnter(QStringLiteral("function check(v) if not v then error('no value') end end"));
    consoleEnter(QStringLiteral("check(false)"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("in[1]:1: no value")), 5000);
}

void tst_Panel::editorChunkNamedAfterExample()
{
    // The editor's chunk is named after the example (or the opened file):
    // the traceback says where the error is.
    QVERIFY(window->loadExample(QStringLiteral("error")));
    child<QPushButton>("run")->click();
    QTRY_COMPARE_WITH_TIMEOUT(window->editor()->errorLine(), 7, 5000);
    const QString errors = child<QPlainTextEdit>("errors")->toPlainText();
    QVERIFY2(errors.contains(QLatin1String("examples/error.lua:7:")), qPrintable(errors));
}

void tst_Panel::examplesLoad_data()
{
    QTest::addColumn<QString>("name");
    for (const QString &name : MainWindow::exampleNames())
        QTest::addRow("%s", qPrintable(name)) << name;
}

void tst_Panel::examplesLoad()
{
    QFETCH(QString, name);
    // Through the Examples menu, as a user picks one.
    window->editor()->clear();
    auto *action = window->findChild<QAction *>(QStringLiteral("example-") + name);
    QVERIFY(action);
    action->trigger();
    QVERIFY(window->editor()->text().startsWith(QLatin1String("--")));
    QVERIFY(window->loadExample(name));
    // Each example compiles.
    const QIsleReplInput parsed = qisleClassifyInput(window->editor()->text());
    QVERIFY(parsed.kind == QIsleReplInput::Kind::Statements || parsed.kind == QIsleReplInput::Kind::Expression);
}

void tst_Panel::closeWhileRunning()
{
    QVERIFY(window->loadExample(QStringLiteral("infinite")));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTest::qWait(50);
    QCOMPARE(window->state(), MainWindow::State::Running);
    QElapsedTimer timer;
    timer.start();
    window->close();
    window.reset();
    qInfo("window closed and destroyed %lld ms into an infinite loop", timer.elapsed());
    QVERIFY(timer.elapsed() < 2000);
}

void tst_Panel::consoleAnswersWhileScriptSleeps()
{
    // The editor's script sleeps; the console answers meanwhile, and both
    // are listed in Running.
    typeScript(QStringLiteral("isle.progress(1, 2, 'sleeping')\nisle.sleep(10000)\nreturn 'late'"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QCOMPARE(window->jobs()->keys(), QStringList{u"editor"_qs});
    QTRY_COMPARE_WITH_TIMEOUT(child<QProgressBar>("progress")->maximum(), 2, 5000);
    consoleEnter(QStringLiteral("1 + 1"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> 1 + 1\n2")), 5000);
    QCOMPARE(window->state(), MainWindow::State::Running);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->keys(), QStringList{u"editor"_qs}, 5000);
    clickStop(QStringLiteral("editor"));
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->count(), 0, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("stopped")), 5000);
    QVERIFY(!output().contains(QLatin1String("late")));
}

void tst_Panel::stopStopsOnlyItsOwnJob()
{
    typeScript(QStringLiteral("isle.sleep(10000) return 'editor'"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    consoleEnter(QStringLiteral("isle.sleep(10000) return 'first'"));
    consoleEnter(QStringLiteral("isle.sleep(10000) return 'second'"));
    QCOMPARE(window->jobs()->keys(), (QStringList{u"editor"_qs, u"in[1]"_qs, u"in[2]"_qs}));

    clickStop(QStringLiteral("in[1]"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("in[1]: stopped")), 5000); // a late answer names its input
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->keys(), (QStringList{u"editor"_qs, u"in[2]"_qs}), 5000);
    QCOMPARE(window->state(), MainWindow::State::Running);

    clickStop(QStringLiteral("editor")); // the editor's row does what the Stop button does
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->keys(), QStringList{u"in[2]"_qs}, 5000);
    QVERIFY(!output().contains(QLatin1String("returned")));

    consoleEnter(QStringLiteral("6 * 7")); // still answered at once
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> 6 * 7\n42")), 5000);
    clickStop(QStringLiteral("in[2]"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("in[2]: stopped")), 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->count(), 0, 5000);
    const QStringList lines = output().split(u'\n');
    QVERIFY(!lines.contains(u"first"_qs));
    QVERIFY(!lines.contains(u"second"_qs));
}

void tst_Panel::downloadExample()
{
    // The example awaits four application-side downloads at once (one
    // fails with 404); the console answers while they run.
    window->downloads()->setBytesPerSecond(8 * 1024 * 1024); // a few ticks each
    QSignalSpy rows(window->jobs(), &JobList::countChanged);
    QVERIFY(window->loadExample(QStringLiteral("download")));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    consoleEnter(QStringLiteral("1 + 1"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("> 1 + 1\n2")), 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 10000);

    qint64 total = 0;
    for (const char *url : {"https://example.org/releases/qt-everywhere-src-6.4.2.tar.xz",
                            "https://example.org/releases/lua-5.4.6.tar.gz",
                            "https://example.org/docs/reference-manual.pdf"}) {
        const qint64 size = Downloads::sizeFor(QLatin1String(url));
        total += size;
        const QString name = QString::fromLatin1(url).section(QLatin1Char('/'), -1);
        QTRY_VERIFY2_WITH_TIMEOUT(output().contains(QStringLiteral("%1 bytes").arg(size)), qPrintable(name + u'\n' + output()),
                                  5000);
    }
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QStringLiteral("returned %1 bytes in 3 files").arg(total)), 5000);
    QVERIFY2(output().contains(QLatin1String("failed: 404 Not Found")), qPrintable(output()));
    QVERIFY(child<QPlainTextEdit>("errors")->toPlainText().isEmpty());
    auto *bar = child<QProgressBar>("progress");
    QCOMPARE(bar->maximum(), 4);
    QCOMPARE(bar->value(), 4);
    QCOMPARE(window->downloads()->activeCount(), 0);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->count(), 0, 5000);
    int most = 0;
    for (const QList<QVariant> &args : std::as_const(rows))
        most = qMax(most, args.at(0).toInt());
    QVERIFY2(most >= 5, "the script and its four downloads were listed at once");
}

void tst_Panel::stoppingScriptCancelsDownload()
{
    typeScript(QStringLiteral("return #app.download('https://example.org/big.iso', 100000000)"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->downloads()->activeCount(), 1, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->keys(), (QStringList{u"editor"_qs, u"download[1]"_qs}), 5000);
    QElapsedTimer timer;
    timer.start();
    QTest::mouseClick(child<QPushButton>("stop"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->state(), MainWindow::State::Idle, 5000);
    QTRY_COMPARE_WITH_TIMEOUT(window->downloads()->activeCount(), 0, 5000); // the download saw the cancel
    qInfo("script and download stopped in %lld ms", timer.elapsed());
    QTRY_COMPARE_WITH_TIMEOUT(window->jobs()->count(), 0, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("stopped")), 5000);
}

void tst_Panel::downloadRowStop()
{
    // Stop on a download's row cancels that download only: the script sees
    // an error that says so (its producer canceled the future) and goes on.
    typeScript(QStringLiteral("local ok, e = pcall(app.download, 'https://example.org/big.iso', 100000000)\n"
                              "print(ok, e)\n"
                              "return 'after'"));
    QTest::mouseClick(child<QPushButton>("run"), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(window->downloads()->activeCount(), 1, 5000);
    clickStop(QStringLiteral("download[1]"));
    QTRY_VERIFY_WITH_TIMEOUT(output().contains(QLatin1String("returned after")), 5000);
    QVERIFY2(output().contains(QLatin1String("false\t")) && output().contains(QLatin1String("canceled")),
             qPrintable(output()));
    QTRY_COMPARE_WITH_TIMEOUT(window->downloads()->activeCount(), 0, 5000);
}

QTEST_MAIN(tst_Panel)
#include "tst_panel.moc"
