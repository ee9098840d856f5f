// QIsleJob: one request's future as properties and signals.
#include <QIsle/QIsle>

#include <QtCore/QMutex>
#include <QtCore/QPromise>
#include <QtTest/QtTest>

#include <memory>
#include <vector>

using namespace std::chrono_literals;

class tst_Job : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void result();
    void notificationOrder();
    void progressAndStreaming();
    void errors_data();
    void errors();
    void cancel();
    void suspendAndResume();
    void cancelWhileSuspended();
    void destroyedIsle();
    void alreadyFinishedFuture();
    void emptyJob();
    void jobsSideBySide();
    void cancelReachesAWait();
    void suspendHoldsAfterTheWait();
};

namespace {
// Records every notification of a job by name, in order.
struct Recorder
{
    QStringList events;
    explicit Recorder(QIsleJob *job)
    {
        QObject::connect(job, &QIsleJob::runningChanged, [this](bool r) { events << (r ? u"running"_qs : u"stopped"_qs); });
        QObject::connect(job, &QIsleJob::progressChanged, [this] { events << u"progress"_qs; });
        QObject::connect(job, &QIsleJob::resultEmitted, [this] { events << u"emitted"_qs; });
        QObject::connect(job, &QIsleJob::resultChanged, [this] { events << u"result"_qs; });
        QObject::connect(job, &QIsleJob::errorChanged, [this] { events << u"error"_qs; });
        QObject::connect(job, &QIsleJob::canceledChanged, [this] { events << u"canceled"_qs; });
        QObject::connect(job, &QIsleJob::failed, [this] { events << u"failed"_qs; });
        QObject::connect(job, &QIsleJob::finished, [this] { events << u"finished"_qs; });
    }
    // The events with progress and emits dropped (their count varies).
    QStringList tail() const
    {
        QStringList t = events;
        t.removeAll(u"progress"_qs);
        t.removeAll(u"emitted"_qs);
        return t;
    }
};
// Futures the test finishes by hand: the async host function "gate" hands
// out one per call (made on the Lua thread, finished from the test's).
class Gates
{
public:
    QIsle::AsyncHostFunction function()
    {
        return [this](const QVariantList &) {
            auto promise = std::make_shared<QPromise<QVariant>>();
            promise->start();
            QMutexLocker lock(&m_mutex);
            m_promises.push_back(promise);
            return promise->future();
        };
    }
    int count() const
    {
        QMutexLocker lock(&m_mutex);
        return int(m_promises.size());
    }
    std::shared_ptr<QPromise<QVariant>> at(int i) const
    {
        QMutexLocker lock(&m_mutex);
        return m_promises.at(std::size_t(i));
    }

private:
    mutable QMutex m_mutex;
    std::vector<std::shared_ptr<QPromise<QVariant>>> m_promises;
};

std::unique_ptr<QIsle> concurrentIsle(Gates &gates)
{
    QIsleOptions options;
    options.maxConcurrentRequests = 0;
    auto isle = QIsle::spawn({}, options);
    isle->registerAsyncFunction(QStringLiteral("gate"), gates.function());
    return isle;
}
} // namespace

void tst_Job::result()
{
    auto isle = QIsle::spawn();
    QIsleJob job(isle->spawnEval(QStringLiteral("return 6 * 7")));
    QVERIFY(job.isRunning());
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(job.result(), QVariant(qlonglong(42)));
    QVERIFY(!job.isRunning());
    QVERIFY(job.isFinished());
    QVERIFY(!job.isCanceled());
    QCOMPARE(job.errorKind(), QString());
    QCOMPARE(job.errorLine(), -1);
    QVERIFY(!job.error());
}

void tst_Job::notificationOrder()
{
    auto isle = QIsle::spawn();
    QIsleJob job(isle->spawnEval(QStringLiteral("isle.emit(1) isle.emit(2) return 'done'")));
    Recorder recorder(&job);
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QStringList events = recorder.events;
    events.removeAll(u"progress"_qs); // Qt counts results as progress when no range is set
    QCOMPARE(events, (QStringList{u"emitted"_qs, u"emitted"_qs, u"result"_qs, u"stopped"_qs, u"finished"_qs}));
    QCOMPARE(finished.count(), 1);
}

void tst_Job::progressAndStreaming()
{
    auto isle = QIsle::spawn();
    QIsleJob job(isle->spawnEval(QStringLiteral(
            "for i = 1, 5 do isle.progress(i, 5, 'step ' .. i) isle.emit({i, i * i}) isle.sleep(20) end\n"
            "return 'done'")));
    QList<int> progress;
    QList<int> indexes;
    QVariantList values;
    connect(&job, &QIsleJob::progressChanged, this, [&](int p) { progress << p; });
    connect(&job, &QIsleJob::resultEmitted, this, [&](int index, const QVariant &v) {
        QVERIFY(job.isRunning()); // streamed before the end
        QCOMPARE(QThread::currentThread(), job.thread()); // never on the Lua thread
        indexes << index;
        values << v;
    });
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(indexes, (QList<int>{1, 2, 3, 4, 5}));
    QCOMPARE(values.at(2), QVariant(QVariantList{qlonglong(3), qlonglong(9)}));
    QCOMPARE(job.emittedResults(), values);
    QVERIFY(!progress.isEmpty());
    QVERIFY(std::is_sorted(progress.cbegin(), progress.cend()));
    QCOMPARE(job.progress(), 5);
    QCOMPARE(job.progressMaximum(), 5);
    QCOMPARE(job.progressText(), QStringLiteral("step 5"));
    QCOMPARE(job.result(), QVariant(QStringLiteral("done")));
}

void tst_Job::errors_data()
{
    QTest::addColumn<QString>("function"); // call() when set, eval() of chunk otherwise
    QTest::addColumn<QString>("chunk");
    QTest::addColumn<QString>("kind");
    QTest::addColumn<int>("line");
    QTest::addColumn<QString>("message");
    QTest::addRow("runtime") << QString() << "local x = 1\nerror('boom')" << "Runtime" << 2 << "boom";
    QTest::addRow("syntax") << QString() << "x = 1\ny = = 2" << "Syntax" << 2 << "unexpected symbol";
    QTest::addRow("not-found") << "nowhere.fn" << QString() << "NotFound" << -1 << "nowhere.fn";
    QTest::addRow("timeout") << QString() << "while true do end" << "Timeout" << -1 << "timeout";
}

void tst_Job::errors()
{
    QFETCH(QString, function);
    QFETCH(QString, chunk);
    QFETCH(QString, kind);
    QFETCH(int, line);
    QFETCH(QString, message);
    QIsleOptions options;
    options.timeout = 100ms;
    auto isle = QIsle::spawn({}, options);
    QIsleJob job(function.isEmpty() ? isle->spawnEval(chunk) : isle->spawnCall(function));
    Recorder recorder(&job);
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(recorder.tail(), (QStringList{u"error"_qs, u"stopped"_qs, u"failed"_qs, u"finished"_qs}));
    QCOMPARE(job.errorKind(), kind);
    QCOMPARE(job.errorLine(), line);
    QVERIFY2(job.errorString().contains(message), qPrintable(job.errorString()));
    QVERIFY(job.error());
    QCOMPARE(QIsleError::kindName(job.error()->kind()), kind);
    QVERIFY2(!job.isCanceled(), "a failure is not a cancel, though Qt 6.4 flags the future canceled");
    QVERIFY(!job.result().isValid());
}

void tst_Job::cancel()
{
    auto isle = QIsle::spawn();
    QIsleJob job(isle->spawnEval(QStringLiteral("isle.emit('started') while true do end")));
    QSignalSpy emitted(&job, &QIsleJob::resultEmitted);
    QVERIFY(emitted.wait(5000)); // running now
    Recorder recorder(&job);
    job.cancel();
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(recorder.tail(), (QStringList{u"canceled"_qs, u"stopped"_qs, u"finished"_qs}));
    QVERIFY(job.isCanceled());
    QCOMPARE(job.errorKind(), QString());
    QVERIFY(!job.result().isValid());
    job.cancel(); // after the end: nothing
    QCOMPARE(isle->eval(QStringLiteral("return 1")), QVariant(qlonglong(1)));
}

void tst_Job::suspendAndResume()
{
    auto isle = QIsle::spawn();
    isle->eval(QStringLiteral("counter = 0"));
    QIsleJob job(isle->spawnEval(QStringLiteral("isle.emit(0) while true do counter = counter + 1 end")));
    QSignalSpy emitted(&job, &QIsleJob::resultEmitted);
    QVERIFY(emitted.wait(5000));
    QSignalSpy suspendedChanged(&job, &QIsleJob::suspendedChanged);
    job.suspend();
    QVERIFY(job.isSuspended()); // at once, for the button that asked
    QTRY_VERIFY_WITH_TIMEOUT(job.future().isSuspended(), 5000);
    QFuture<QVariant> probe = isle->spawnEval(QStringLiteral("return counter"));
    QTest::qWait(50);
    QVERIFY2(!probe.isFinished(), "a suspended job still holds the VM");
    job.resume();
    QVERIFY(!job.isSuspended());
    QCOMPARE(suspendedChanged.count(), 2);
    QCOMPARE(suspendedChanged.at(0).at(0).toBool(), true);
    QCOMPARE(suspendedChanged.at(1).at(0).toBool(), false);
    QTest::qWait(20);
    job.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished() && probe.isFinished(), 5000);
    QVERIFY(job.isCanceled());
    QVERIFY(!job.isSuspended());
    QVERIFY(probe.result().toLongLong() > 0);
}

void tst_Job::cancelWhileSuspended()
{
    auto isle = QIsle::spawn();
    QIsleJob job(isle->spawnEval(QStringLiteral("isle.emit(0) while true do end")));
    QSignalSpy emitted(&job, &QIsleJob::resultEmitted);
    QVERIFY(emitted.wait(5000));
    job.suspend();
    QTRY_VERIFY_WITH_TIMEOUT(job.future().isSuspended(), 5000);
    job.cancel();
    QTRY_VERIFY_WITH_TIMEOUT(job.isFinished(), 5000);
    QVERIFY(job.isCanceled());
    QVERIFY(!job.isSuspended());
}

void tst_Job::destroyedIsle()
{
    auto isle = QIsle::spawn();
    QIsleJob running(isle->spawnEval(QStringLiteral("isle.emit(0) while true do end")));
    QIsleJob queued(isle->spawnEval(QStringLiteral("return 1")));
    QSignalSpy emitted(&running, &QIsleJob::resultEmitted);
    QVERIFY(emitted.wait(5000));
    isle.reset();
    QTRY_VERIFY_WITH_TIMEOUT(running.isFinished() && queued.isFinished(), 5000);
    QVERIFY(running.isCanceled());
    QVERIFY(queued.isCanceled());
    QVERIFY(!queued.result().isValid());
    QCOMPARE(running.errorKind(), QString());
}

void tst_Job::alreadyFinishedFuture()
{
    auto isle = QIsle::spawn();
    isle->shutdown();
    QFuture<QVariant> future = isle->spawnEval(QStringLiteral("return 1"));
    QVERIFY(future.isFinished());
    QIsleJob job(future);
    QSignalSpy failed(&job, &QIsleJob::failed);
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(job.isRunning()); // until its signals arrive, connected or not
    QVERIFY(finished.wait(5000));
    QCOMPARE(failed.count(), 1);
    QCOMPARE(job.errorKind(), QStringLiteral("Shutdown"));
    QVERIFY(!job.isCanceled());
}

void tst_Job::emptyJob()
{
    QIsleJob job;
    QSignalSpy finished(&job, &QIsleJob::finished);
    job.cancel();
    job.suspend();
    QVERIFY(!job.isRunning());
    QVERIFY(!job.isSuspended());
    QVERIFY(!finished.wait(50));
}

void tst_Job::jobsSideBySide()
{
    // maxConcurrentRequests = 0: while one job waits for an application
    // future, the next runs and finishes; each job shows its own request.
    Gates gates;
    auto isle = concurrentIsle(gates);
    QIsleJob waiting(isle->spawnEval(QStringLiteral("isle.progress(1, 2, 'waiting') return gate() .. '!'")));
    QTRY_COMPARE_WITH_TIMEOUT(gates.count(), 1, 5000);
    QIsleJob quick(isle->spawnEval(QStringLiteral("isle.progress(3, 3, 'quick') return 1 + 1")));
    QSignalSpy quickFinished(&quick, &QIsleJob::finished);
    QVERIFY(quickFinished.wait(5000));
    QCOMPARE(quick.result(), QVariant(qlonglong(2)));
    QCOMPARE(quick.progressText(), QStringLiteral("quick"));
    QVERIFY(waiting.isRunning()); // still waiting for its future
    QTRY_COMPARE_WITH_TIMEOUT(waiting.progressText(), QStringLiteral("waiting"), 5000);

    gates.at(0)->addResult(QStringLiteral("answer"));
    gates.at(0)->finish();
    QSignalSpy waitingFinished(&waiting, &QIsleJob::finished);
    QVERIFY(waitingFinished.wait(5000));
    QCOMPARE(waiting.result(), QVariant(QStringLiteral("answer!")));
    QCOMPARE(waiting.progress(), 1);
    QCOMPARE(waiting.progressMaximum(), 2);
}

void tst_Job::cancelReachesAWait()
{
    // cancel() of a job whose request waits: the awaited future is canceled,
    // the job ends canceled at once; a sleeping job beside it goes on.
    Gates gates;
    auto isle = concurrentIsle(gates);
    QIsleJob waiting(isle->spawnEval(QStringLiteral("local v <close> = setmetatable({}, {__close = function() closed = true end}) "
                                                    "return gate()")));
    QTRY_COMPARE_WITH_TIMEOUT(gates.count(), 1, 5000);
    QIsleJob sleeping(isle->spawnEval(QStringLiteral("isle.sleep(150) return 'slept'")));
    QElapsedTimer timer;
    timer.start();
    Recorder recorder(&waiting);
    waiting.cancel();
    QSignalSpy finished(&waiting, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QVERIFY2(timer.elapsed() < 2000, "the stop reaches the wait at once");
    QCOMPARE(recorder.tail(), (QStringList{u"canceled"_qs, u"stopped"_qs, u"finished"_qs}));
    QVERIFY(waiting.isCanceled());
    QCOMPARE(waiting.errorKind(), QString());
    QTRY_VERIFY_WITH_TIMEOUT(gates.at(0)->isCanceled(), 5000); // the producer sees the cancel
    QVERIFY(sleeping.isRunning());

    QSignalSpy sleptFinished(&sleeping, &QIsleJob::finished);
    QVERIFY(sleptFinished.wait(5000));
    QCOMPARE(sleeping.result(), QVariant(QStringLiteral("slept")));
    QVERIFY(!sleeping.isCanceled());
    QCOMPARE(isle->eval(QStringLiteral("return closed")), QVariant(true));
    gates.at(0)->finish();
}

void tst_Job::suspendHoldsAfterTheWait()
{
    // suspend() of a waiting job: the wait ends, the script stays parked
    // until resume().
    Gates gates;
    auto isle = concurrentIsle(gates);
    QIsleJob job(isle->spawnEval(QStringLiteral("local v = gate() after = true return v")));
    QTRY_COMPARE_WITH_TIMEOUT(gates.count(), 1, 5000);
    job.suspend();
    QVERIFY(job.isSuspended());
    gates.at(0)->addResult(7);
    gates.at(0)->finish();
    QTest::qWait(150);
    QVERIFY(job.isRunning());
    QVERIFY(!job.isFinished());
    // Other requests run meanwhile: the parked one holds only itself.
    QCOMPARE(isle->eval(QStringLiteral("return after")), QVariant());
    job.resume();
    QVERIFY(!job.isSuspended());
    QSignalSpy finished(&job, &QIsleJob::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(job.result(), QVariant(qlonglong(7)));
    QCOMPARE(isle->eval(QStringLiteral("return after")), QVariant(true));
}

QTEST_GUILESS_MAIN(tst_Job)
#include "tst_job.moc"
