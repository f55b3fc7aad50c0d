// container_awareness: what a JVM started with the options under test sees in the service's
// container. `java @OPTIONS Probe` prints "available_processors=N" (Runtime's answer, the
// number frameworks size their pools from) and the JVM's own ergonomics.
public final class Probe {
    public static void main(String[] args) {
        Runtime rt = Runtime.getRuntime();
        System.out.println("available_processors=" + rt.availableProcessors());
        System.out.println("max_heap_mb=" + rt.maxMemory() / (1024 * 1024));
        System.out.println("common_pool_parallelism="
                + java.util.concurrent.ForkJoinPool.getCommonPoolParallelism());
    }
}
