// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// The demo scripting panel:
// qisle-panel [--example NAME] [--run] [--console LINE]... [--screenshot FILE [--screenshot-after MS]] [script.lua]
#include "mainwindow.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QFile>
#include <QtCore/QTimer>
#include <QtWidgets/QApplication>

#include "luaeditor.h"

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("qisle-panel"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("QIsle's demo scripting panel"));
    parser.addHelpOption();
    const QCommandLineOption example(QStringLiteral("example"),
                                     QStringLiteral("Load an example: %1.")
                                             .arg(MainWindow::exampleNames().join(QStringLiteral(", "))),
                                     QStringLiteral("name"));
    const QCommandLineOption run(QStringLiteral("run"), QStringLiteral("Run the script at once."));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save the window to FILE once the run ended, then quit "
                                                       "(QT_QPA_PLATFORM=offscreen works)."),
                                        QStringLiteral("file"));
    const QCommandLineOption console(QStringLiteral("console"),
                                     QStringLiteral("Type LINE into the console after the start (after --run, "
                                                    "one line every 300 ms), while the script runs."),
                                     QStringLiteral("line"));
    const QCommandLineOption screenshotAfter(QStringLiteral("screenshot-after"),
                                             QStringLiteral("Take the screenshot MS after the start instead of "
                                                            "once the run ended (a script caught half-way)."),
                                             QStringLiteral("ms"));
    parser.addOption(example);
    parser.addOption(run);
    parser.addOption(console);
    parser.addOption(screenshot);
    parser.addOption(screenshotAfter);
    parser.addPositionalArgument(QStringLiteral("script"), QStringLiteral("A Lua file to open."));
    parser.process(app);

    MainWindow window;
    if (parser.isSet(example) && !window.loadExample(parser.value(example)))
        parser.showHelp(1);
    if (const QStringList files = parser.positionalArguments(); !files.isEmpty()) {
        QFile f(files.constFirst());
        if (!f.open(QIODevice::ReadOnly)) {
            qCritical("cannot open %s", qPrintable(files.constFirst()));
            return 1;
        }
        window.editor()->setText(QString::fromUtf8(f.readAll()));
    }
    window.resize(1100, 720);
    window.show();
    if (parser.isSet(run))
        window.run();
    const QStringList lines = parser.values(console);
    for (qsizetype i = 0; i < lines.size(); ++i) { // one every 300 ms, as typed
        QTimer::singleShot(int(300 * (i + 1)), &window,
                           [&window, line = lines.at(i)] { window.enterConsoleLine(line); });
    }
    if (parser.isSet(screenshot)) {
        const QString file = parser.value(screenshot);
        auto grab = [&window, file] {
            if (!window.grab().save(file))
                qCritical("cannot write %s", qPrintable(file));
            QCoreApplication::quit();
        };
        if (parser.isSet(screenshotAfter)) {
            QTimer::singleShot(parser.value(screenshotAfter).toInt(), &window, grab);
        } else {
            auto *poll = new QTimer(&window);
            QObject::connect(poll, &QTimer::timeout, &window, [&window, poll, grab] {
                if (window.state() != MainWindow::State::Idle)
                    return;
                poll->stop();
                QTimer::singleShot(300, &window, grab); // a moment for the last output flush and paint
            });
            poll->start(50);
        }
    }
    return app.exec();
}
