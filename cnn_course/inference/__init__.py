"Forward passes that train nothing (torch or ONNX Runtime), the feature cache and saved runs."
