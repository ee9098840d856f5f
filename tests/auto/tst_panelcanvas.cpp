// The panel demo's application object: the canvas example draws on the
// window's Canvas (a GUI-thread QWidget exposed as `canvas`) and handles its
// clicked signal in Lua.
#include "canvas.h"
#include "mainwindow.h"

#include <QtTest/QtTest>
#include <QtWidgets/QApplication>
#include <QtWidgets/QPlainTextEdit>
#include <QtWidgets/QPushButton>

class tst_PanelCanvas : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void canvasExampleDrawsAndHandlesClicks();
    void blockingEvalFromTheGuiThread();
};

void tst_PanelCanvas::canvasExampleDrawsAndHandlesClicks()
{
    MainWindow window;
    window.resize(1000, 700);
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    QVERIFY(window.loadExample(QStringLiteral("canvas")));
    window.findChild<QPushButton *>(QStringLiteral("run"))->click();
    QTRY_COMPARE_WITH_TIMEOUT(window.state(), MainWindow::State::Idle, 10000);
    Canvas *canvas = window.canvas();
    QCOMPARE(canvas->shapeCount(), 25); // 24 circles and a caption
    QCOMPARE(canvas->background(), QColor(QStringLiteral("#fbfbfd")));
    auto *output = window.findChild<QPlainTextEdit *>(QStringLiteral("output"));
    QTRY_VERIFY_WITH_TIMEOUT(output->toPlainText().contains(QLatin1String("25")), 5000); // the result, shown

    // A click runs the Lua handler, which draws through the canvas again.
    QTest::mouseClick(canvas, Qt::LeftButton, {}, QPoint(40, 60));
    QTRY_COMPARE_WITH_TIMEOUT(canvas->shapeCount(), 26, 5000);
    QTRY_VERIFY_WITH_TIMEOUT(output->toPlainText().contains(QLatin1String("click at 40, 60")), 5000);
}

void tst_PanelCanvas::blockingEvalFromTheGuiThread()
{
    // The panel's own code may eval a script that draws: the GUI thread,
    // blocked in eval, runs the canvas calls meanwhile.
    auto isle = QIsle::spawn();
    Canvas canvas;
    isle->exposeObject(QStringLiteral("canvas"), &canvas);
    QCOMPARE(isle->eval(QStringLiteral("for i = 1, 10 do canvas:add(canvas.Square, i * 10, 20, 8) end "
                                       "return canvas.shapeCount")),
             QVariant(qlonglong(10)));
    QCOMPARE(canvas.shapeCount(), 10);
}

QTEST_MAIN(tst_PanelCanvas)
#include "tst_panelcanvas.moc"
