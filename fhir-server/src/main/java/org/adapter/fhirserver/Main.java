package org.adapter.fhirserver;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Local HAPI FHIR JPA R4 server: Spring context ({@link FhirServerConfig}), a {@link RestfulServer}
 * at {@code /fhir}, embedded Jetty. Usage: {@code java -jar fhir-server.jar [--host H] [--port N] [--db PATH|mem]}.
 */
public final class Main {

	private Main() {}

	public static void main(String[] args) throws Exception {
		ServerOptions options;
		try {
			options = ServerOptions.parse(args);
		} catch (IllegalArgumentException e) {
			boolean help = e.getMessage().isEmpty();
			if (!help) {
				System.err.println("error: " + e.getMessage());
			}
			System.err.println("usage: java -jar fhir-server.jar [--host 127.0.0.1] [--port 8080] [--db PATH|mem]");
			System.err.println("  --db PATH  H2 database file PATH.mv.db (default data/fhir); mem = in memory");
			System.exit(help ? 0 : 2);
			return;
		}
		long started = System.nanoTime();

		AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext();
		spring.getBeanFactory().registerSingleton("serverOptions", options);
		spring.register(FhirServerConfig.class);
		spring.refresh();

		Server jetty = new Server(new QueuedThreadPool(64, 4));
		ServerConnector connector = new ServerConnector(jetty);
		connector.setHost(options.host());
		connector.setPort(options.port());
		jetty.addConnector(connector);
		ServletContextHandler context = new ServletContextHandler();
		context.setContextPath("/");
		context.addServlet(new ServletHolder(restfulServer(spring)), "/fhir/*");
		jetty.setHandler(context);
		jetty.setStopAtShutdown(false);

		Runtime.getRuntime().addShutdownHook(new Thread(() -> {
			try {
				jetty.stop();
			} catch (Exception e) {
				System.err.println("error stopping Jetty: " + e);
			}
			spring.close();
		}, "fhir-server-shutdown"));

		try {
			jetty.start();
		} catch (Exception e) {
			// e.g. the port is taken: stop, or HAPI's scheduler threads would keep the JVM alive.
			System.err.println("error: cannot listen on " + options.host() + ":" + options.port() + ": " + e);
			System.exit(1);
		}
		double seconds = (System.nanoTime() - started) / 1e9;
		System.out.printf(
				"FHIR server ready at http://%s:%d/fhir (database %s) in %.1f s%n",
				options.host(), connector.getLocalPort(), options.inMemory() ? "in memory" : options.jdbcUrl(), seconds);
		System.out.flush();
		jetty.join();
	}

	private static RestfulServer restfulServer(AnnotationConfigApplicationContext theSpring) {
		FhirContext fhirContext = theSpring.getBean(FhirContext.class);
		RestfulServer server = new RestfulServer(fhirContext);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.registerProviders(theSpring.getBean("myResourceProvidersR4", ResourceProviderFactory.class)
				.createProviders());
		server.registerProvider(theSpring.getBean("mySystemProviderR4", JpaSystemProvider.class));
		server.registerProvider(theSpring.getBean(BulkDataExportProvider.class));
		server.setPagingProvider(theSpring.getBean(DatabaseBackedPagingProvider.class));

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server,
				theSpring.getBean(IFhirSystemDao.class),
				theSpring.getBean(JpaStorageSettings.class),
				theSpring.getBean(ISearchParamRegistry.class),
				theSpring.getBean(IValidationSupport.class));
		capabilities.setImplementationDescription("Adapter local HAPI FHIR JPA R4 server");
		server.setServerConformanceProvider(capabilities);
		return server;
	}
}
