package org.adapter.fhirserver;

import ca.uhn.fhir.batch2.api.IJobMaintenanceService;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import jakarta.annotation.PostConstruct;
import jakarta.persistence.EntityManagerFactory;
import java.time.Duration;
import java.util.Properties;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * Spring wiring of HAPI FHIR JPA for R4 on H2, following the configuration HAPI's own tests use:
 * the R4 DAOs and providers, the core JPA services, Batch2 and its jobs (needed by {@code $export}).
 */
@Configuration
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionChannelConfig.class, // the in-JVM message broker that Batch2 uses
	ThreadPoolFactoryConfig.class, // thread pools for transactions and searches
	FhirServerConfig.BatchMaintenance.class
})
public class FhirServerConfig {

	static final int DEFAULT_PAGE_SIZE = 50;
	static final int MAXIMUM_PAGE_SIZE = 1000;

	@Autowired
	private ServerOptions myOptions;

	@Bean
	public DataSource dataSource() {
		BasicDataSource dataSource = new BasicDataSource();
		dataSource.setDriver(new org.h2.Driver());
		dataSource.setUrl(myOptions.jdbcUrl());
		dataSource.setUsername("sa");
		dataSource.setPassword("");
		dataSource.setMaxTotal(10);
		dataSource.setMaxWait(Duration.ofSeconds(30));
		return dataSource;
	}

	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource());
		Properties properties = new Properties();
		properties.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		properties.put("hibernate.hbm2ddl.auto", "update");
		properties.put("hibernate.format_sql", "false");
		properties.put("hibernate.show_sql", "false");
		properties.put("hibernate.search.enabled", "false");
		factory.setJpaProperties(properties);
		return factory;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		JpaTransactionManager transactionManager = new JpaTransactionManager();
		transactionManager.setEntityManagerFactory(theEntityManagerFactory);
		return transactionManager;
	}

	@Bean
	public JpaStorageSettings storageSettings() {
		JpaStorageSettings settings = new JpaStorageSettings();
		// PUT Patient/pt-1 creates it (update-as-create) with the client's alphanumeric id.
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ALPHANUMERIC);
		// Re-sending identical content keeps the current version; history is kept for real changes.
		settings.setSuppressUpdatesWithNoChange(true);
		// A search repeated right after a write must see that write: no cached search results.
		settings.setReuseCachedSearchResultsForMillis(null);
		settings.setEnableTaskBulkExportJobExecution(true);
		// Each $export kick-off runs afresh, so an export after new writes includes them.
		settings.setEnableBulkExportJobReuse(false);
		settings.setJobFastTrackingEnabled(true);
		settings.setAllowMultipleDelete(true);
		settings.setExpungeEnabled(true);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** $export output (Binary resources) whose content is kept in the database, not in memory. */
	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}

	@Bean
	@Primary
	public DatabaseBackedPagingProvider pagingProvider() {
		DatabaseBackedPagingProvider provider = new DatabaseBackedPagingProvider();
		provider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		provider.setMaximumPageSize(MAXIMUM_PAGE_SIZE);
		return provider;
	}

	/** Batch2 (bulk export) polls every minute by default; a local server can afford a few seconds. */
	@Configuration
	static class BatchMaintenance {
		@Autowired
		private IJobMaintenanceService myJobMaintenanceService;

		@PostConstruct
		void fasterMaintenancePasses() {
			// Read by the scheduler when the context is refreshed, i.e. after this runs.
			((JobMaintenanceServiceImpl) myJobMaintenanceService).setScheduledJobFrequencyMillis(2_000);
		}
	}
}
