// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
// The demo scripting panel: qisle-panel [--example NAME] [--run] [--screenshot FILE] [script.lua]
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
    parser.addOption(example);
    parser.addOption(run);
    parser.addOption(screenshot);
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
    if (parser.isSet(screenshot)) {
        const QString file = parser.value(screenshot);
        auto *poll = new QTimer(&window);
        QObject::connect(poll, &QTimer::timeout, &window, [&window, poll, file] {
            if (window.state() != MainWindow::State::Idle)
                return;
            poll->stop();
            // A moment for the last output flush and paint.
            QTimer::singleShot(300, &window, [&window, file] {
                if (!window.grab().save(file))
                    qCritical("cannot write %s", qPrintable(file));
                QCoreApplication::quit();
            });
        });
        poll->start(50);
    }
    return app.exec();
}
