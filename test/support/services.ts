/** The throwaway services `npm start` also uses (scripts/dev-services.ts), for tests and benchmarks. */
export * from '../../scripts/dev-services';
