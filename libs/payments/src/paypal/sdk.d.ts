/* eslint-disable @typescript-eslint/no-unused-vars -- ambient declarations of the SDK, which ships no types */
declare module '@paypal/checkout-server-sdk' {
  export interface HttpRequest {
    path: string;
    verb: string;
    body?: unknown;
    headers: Record<string, string>;
  }
  export interface HttpResponse<T = unknown> {
    statusCode: number;
    headers: Record<string, string>;
    result: T;
  }
  namespace core {
    class PayPalEnvironment {
      constructor(clientId: string, clientSecret: string, baseUrl: string, webUrl: string);
      baseUrl: string;
    }
    class PayPalHttpClient {
      constructor(environment: PayPalEnvironment);
      execute<T = unknown>(request: HttpRequest): Promise<HttpResponse<T>>;
      getTimeout(): number;
      encoder: {
        _encoders: { encode(req: HttpRequest): string; decode(body: string): unknown; contentType(): RegExp }[];
      };
    }
  }
  namespace orders {
    class OrdersCreateRequest implements HttpRequest {
      path: string;
      verb: string;
      headers: Record<string, string>;
      prefer(p: string): this;
      requestBody(b: unknown): this;
    }
    class OrdersGetRequest implements HttpRequest {
      constructor(id: string);
      path: string;
      verb: string;
      headers: Record<string, string>;
    }
    class OrdersCaptureRequest implements HttpRequest {
      constructor(id: string);
      path: string;
      verb: string;
      headers: Record<string, string>;
      prefer(p: string): this;
      requestBody(b: unknown): this;
      payPalRequestId(id: string): this;
    }
  }
  namespace payments {
    class CapturesRefundRequest implements HttpRequest {
      constructor(id: string);
      path: string;
      verb: string;
      headers: Record<string, string>;
      prefer(p: string): this;
      requestBody(b: unknown): this;
      payPalRequestId(id: string): this;
    }
  }
  const sdk: { core: typeof core; orders: typeof orders; payments: typeof payments };
  export default sdk;
}

declare module '@paypal/paypalhttp' {
  /** One part of a multipart/form-data body, encoded by its own Content-Type. */
  class FormPart {
    constructor(value: unknown, headers: Record<string, string>);
  }
  const paypalhttp: { FormPart: typeof FormPart };
  export default paypalhttp;
}
