// `import QIsle` from an application that only did find_package(QIsle).
#include <QtCore/QCoreApplication>
#include <QtCore/QTimer>
#include <QtQml/QQmlComponent>
#include <QtQml/QQmlEngine>

#include <cstdio>
#include <memory>

#ifdef QISLE_QML_LINKED
void qml_register_types_QIsle(); // in QIsle::Qml: keeps the library linked
#endif

int main(int argc, char **argv)
{
#ifdef QISLE_QML_LINKED
    volatile auto registration = &qml_register_types_QIsle;
    Q_UNUSED(registration)
#endif
    QCoreApplication app(argc, argv);
    QQmlEngine engine;
#ifdef QISLE_QML_IMPORT_PATH
    engine.addImportPath(QStringLiteral(QISLE_QML_IMPORT_PATH));
#endif
    QQmlComponent component(&engine);
    // Nothing but QIsle: the module must come in on its own.
    component.setData(R"(
        import QIsle 1.0
        Isle {
            id: isle
            libraries: Isle.SandboxLibraries
            // Bindings only: Component.onCompleted would need QtQml.
            property var job: isle.call("string.rep", ["ab", 2])
            property var answer: job.running ? undefined : job.result
        })", QUrl());
    std::unique_ptr<QObject> root(component.create());
    if (!root) {
        std::fprintf(stderr, "qml-consumer: %s\n", qPrintable(component.errorString()));
        return 1;
    }
    QObject::connect(root.get(), SIGNAL(answerChanged()), &app, SLOT(quit()));
    QTimer::singleShot(10000, &app, [] { QCoreApplication::exit(2); });
    if (app.exec() != 0)
        return 2;
    const QString answer = root->property("answer").toString();
    std::printf("qml-consumer: %s\n", qPrintable(answer));
    return answer == QStringLiteral("abab") ? 0 : 1;
}
