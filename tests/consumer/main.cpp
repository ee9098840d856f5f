// Builds against QIsle::QIsle and runs one script: the smallest real user.
#include <QIsle/QIsle>

#include <QtCore/QCoreApplication>

#include <cstdio>

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    auto isle = QIsle::spawn();
    const QVariant v = isle->eval(QStringLiteral("return 20 + 22"));
    std::printf("consumer: %lld\n", v.toLongLong());
    return v.toLongLong() == 42 ? 0 : 1;
}
